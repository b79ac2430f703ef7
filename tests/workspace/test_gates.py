from __future__ import annotations

from pathlib import Path

from coursekit.workspace.gates import (
    docstring_gate,
    report_gate,
    ruff_check_gate,
    ruff_format_gate,
    undocumented,
)
from tests.workspace.complete import report

CODE = '''"""A module."""


def shown(x):
    """Documented."""
    return x


def bare(x):
    return x


def _private(x):
    return x


class Thing:
    def method(self):
        return 1

    def _helper(self):
        def inner():
            return 2

        return inner


class _Hidden:
    def method(self):
        return 1
'''


def test_undocumented_names_public_functions_classes_and_methods(tmp_path):
    (tmp_path / "m.py").write_text(CODE)
    assert undocumented(tmp_path / "m.py", tmp_path) == (
        4,
        ["m.py:9: function bare", "m.py:17: class Thing", "m.py:18: method method"],
    )


def test_a_file_that_does_not_parse_is_reported(tmp_path):
    (tmp_path / "m.py").write_text("def f(:\n")
    assert undocumented(tmp_path / "m.py", tmp_path) == (1, ["m.py:1: cannot parse (SyntaxError)"])


def test_the_completed_workspace_meets_the_static_gates(completed):
    for gate in (ruff_check_gate, ruff_format_gate, docstring_gate, report_gate):
        assert gate(completed).passed, gate(completed).line()


def test_ruff_check_fails_on_an_unused_import(completed):
    module = completed / "enhancements" / "e_dora.py"
    module.write_text(module.read_text().replace("import math\n", "import math\nimport os\n"))
    (completed / "ruff.toml").write_text('[lint]\nselect = ["E"]\n')  # the course's rules apply
    gate = ruff_check_gate(completed)
    assert not gate.passed and gate.numbers == {"problems": 1}
    assert gate.details == ("enhancements/e_dora.py:4:8: F401 `os` imported but unused",)


def test_ruff_format_fails_on_unformatted_code(completed):
    test = completed / "tests" / "test_e_dora.py"
    test.write_text(
        test.read_text().replace(
            "assert column_norms([[3.0], [4.0]])", "assert column_norms( [[3.0],[4.0]] )"
        )
    )
    gate = ruff_format_gate(completed)
    assert not gate.passed and gate.details == ("tests/test_e_dora.py",)
    assert gate.summary == "1 files to reformat (run: make format)"


def test_ruff_gates_report_a_syntax_error_as_a_failure(completed):
    (completed / "enhancements" / "broken.py").write_text("def f(:\n")
    assert not ruff_check_gate(completed).passed
    assert not ruff_format_gate(completed).passed


def test_docstrings_fail_on_one_bare_public_function(completed):
    module = completed / "enhancements" / "a_rank_ablation.py"
    module.write_text(module.read_text() + "\n\ndef largest(values):\n    return max(values)\n")
    gate = docstring_gate(completed)
    assert not gate.passed and gate.numbers == {"public": 3, "undocumented": 1}
    assert gate.details == ("enhancements/a_rank_ablation.py:21: function largest: no docstring",)


def test_an_empty_package_does_not_pass_the_docstring_gate(fresh):
    assert docstring_gate(fresh).summary.startswith("0 of 0")
    assert not docstring_gate(fresh).passed


def test_report_fails_on_word_count_and_names_the_bounds(completed):
    (completed / "ENHANCEMENT.md").write_text(report(words_per_section=40))
    gate = report_gate(completed)
    assert not gate.passed and gate.numbers["words"] < 500
    assert gate.details[0].endswith("words: write between 500 and 1000")
    (completed / "ENHANCEMENT.md").write_text(report(words_per_section=140))
    assert report_gate(completed).numbers["words"] > 1000 and not report_gate(completed).passed


def test_report_fails_on_a_missing_section_alone(completed):
    text = report(words_per_section=90).replace("## Method", "## Approach")
    (completed / "ENHANCEMENT.md").write_text(text)
    gate = report_gate(completed)
    assert not gate.passed and gate.details == ("section 'Method' is missing",)


def test_a_missing_report_fails(completed):
    (completed / "ENHANCEMENT.md").unlink()
    assert report_gate(completed).summary == "ENHANCEMENT.md is missing"


def test_gates_without_code_directories_fail(tmp_path: Path):
    assert not ruff_check_gate(tmp_path).passed
    assert ruff_check_gate(tmp_path).summary == "0 problems in nothing (no code yet)"
