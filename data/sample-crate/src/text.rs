//! Small text helpers.

/// Whether the text reads the same backwards, ignoring case and non-alphanumerics.
pub fn is_palindrome(text: &str) -> bool {
    let letters: Vec<char> = text
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(|c| c.to_lowercase())
        .collect();
    letters.iter().eq(letters.iter().rev())
}

/// Run-length encoding: "aaab" becomes [('a', 3), ('b', 1)].
pub fn run_lengths(text: &str) -> Vec<(char, usize)> {
    let mut runs: Vec<(char, usize)> = Vec::new();
    for c in text.chars() {
        match runs.last_mut() {
            Some((last, count)) if *last == c => *count += 1,
            _ => runs.push((c, 1)),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_palindrome_ignores_case_and_spaces() {
        assert!(is_palindrome("A man, a plan, a canal: Panama"));
        assert!(!is_palindrome("rust"));
    }

    #[test]
    fn run_lengths_counts_repeats() {
        assert_eq!(run_lengths("aaab"), vec![('a', 3), ('b', 1)]);
        assert!(run_lengths("").is_empty());
    }
}
