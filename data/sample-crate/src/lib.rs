//! A small crate for Tier K: a few functions, each with unit tests, that
//! `coursekit corpus build` turns into (function, tests) training pairs.

pub mod text;

/// Greatest common divisor by Euclid's algorithm; `gcd(0, 0)` is 0.
pub fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        let r = a % b;
        a = b;
        b = r;
    }
    a
}

/// Clamps a percentage into `0..=100`.
pub fn clamp_percent(value: i32) -> i32 {
    if value < 0 {
        0
    } else if value > 100 {
        100
    } else {
        value
    }
}

/// The mean of the values, `None` for an empty slice.
pub fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    Some(values.iter().sum::<f64>() / values.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcd_of_coprimes_is_one() {
        assert_eq!(gcd(9, 28), 1);
    }

    #[test]
    fn gcd_divides_both() {
        assert_eq!(gcd(84, 36), 12);
        assert_eq!(gcd(0, 7), 7);
        assert_eq!(gcd(0, 0), 0);
    }

    #[test]
    fn clamp_percent_keeps_the_range() {
        assert_eq!(clamp_percent(-5), 0);
        assert_eq!(clamp_percent(42), 42);
        assert_eq!(clamp_percent(250), 100);
    }

    #[test]
    fn mean_of_values() {
        assert_eq!(mean(&[1.0, 2.0, 3.0]), Some(2.0));
        assert_eq!(mean(&[]), None);
    }
}
