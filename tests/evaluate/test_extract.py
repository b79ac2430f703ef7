"""Reading answers: the first code block, syntax, test functions and whether they assert."""

from __future__ import annotations

import doctest

import pytest

from coursekit.evaluate import extract
from coursekit.evaluate.extract import asserts, first_code_block, parses

MODULE = """#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds() {
        assert_eq!(add(1, 2), 3);
    }

    #[test]
    #[should_panic(expected = "overflow")]
    fn overflows() {
        add(i32::MAX, 1);
    }

    #[test]
    fn parses_ok() -> Result<(), String> {
        let _ = add(0, 0);
        Ok(())
    }

    #[test]
    fn only_calls() {
        add(2, 2);
    }
}
"""


def test_a_closed_block_is_well_formed_and_its_text_is_exact():
    block = first_code_block(f"Here:\n```rust\n{MODULE}```\nand more ```rust\nfn x() {{}}\n```")
    assert block.well_formed and block.language == "rust"
    assert block.code == MODULE.rstrip("\n")


def test_a_block_cut_by_the_budget_is_not_well_formed():
    block = first_code_block("```rust\n#[test]\nfn t() { assert!(tr")
    assert not block.well_formed and not parses(block.code)


def test_no_block_and_untagged_blocks():
    assert first_code_block("no code here") is None
    assert first_code_block("```\nfn f() {}\n```").language == ""


def test_test_names_at_any_depth_and_with_paths():
    assert extract.test_names(MODULE) == ["adds", "overflows", "parses_ok", "only_calls"]
    assert extract.test_names("#[tokio::test]\nasync fn a() {}\nfn helper() {}") == ["a"]
    assert extract.test_names("fn not_a_test() { assert!(true); }") == []


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("#[test]\nfn t() { assert!(f()); }", True),
        ("#[test]\nfn t() { debug_assert_ne!(f(), 0); }", True),
        ("#[test]\n#[should_panic]\nfn t() { f(); }", True),
        ("#[test]\nfn t() -> Result<(), Box<dyn std::error::Error>> { f()?; Ok(()) }", True),
        ('#[test]\nfn t() { if f() != 3 { panic!("bad") } }', True),
        ('#[test]\nfn t() { let x = f(); println!("{x}"); }', False),
        ("fn helper() { assert!(true); }\n#[test]\nfn t() { helper(); }", False),
    ],
)
def test_asserts(code, expected):
    assert asserts(code) is expected


def test_parses_refuses_errors_missing_nodes_and_empty_code():
    assert parses(MODULE)
    assert not parses("use super::*;\nuse super::*;\n#[test]\nfn t( {")
    assert not parses("fn f() -> i32 { let x = 1 }}")
    assert not parses("   \n")


def test_docstring_examples():
    assert doctest.testmod(extract).failed == 0


def test_fences_close_as_in_commonmark() -> None:
    # a line of backticks indented inside a Rust string does not close the block
    answer = '```rust\nlet md = "\\\n            ```\n";\n```\nafter'
    block = first_code_block(answer)
    assert block is not None and block.well_formed and block.code.endswith('";')
    # a four-backtick block is closed by four, not three
    block = first_code_block("````rust\nx\n```\ny\n````")
    assert block is not None and block.code == "x\n```\ny" and block.well_formed
    # backticks glued to the code are not a closing fence
    block = first_code_block("```rust\nfn a() {}```")
    assert block is not None and not block.well_formed


def test_reference_answers_with_inner_fences_round_trip() -> None:
    from coursekit.data.prompts import rust_block

    tests = 'fn t() {\n    let s = "\\\n```\n";\n}'
    block = first_code_block(rust_block(tests))
    assert block is not None and block.code == tests and block.well_formed
