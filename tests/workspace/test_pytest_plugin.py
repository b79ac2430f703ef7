"""The recording plugin, run in this process on a small test file (pytest.main)."""

from __future__ import annotations

import json

import pytest

from coursekit.experiments.verdict import Verdict
from coursekit.workspace.pytest_plugin import REPORT_ENV

QUIET = "ignore::pytest.PytestAssertRewriteWarning"  # the plugin is imported already
INNER = """import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coursekit.experiments.falsify import falsify


def test_passes():
    assert True


def test_fails():
    assert False


@pytest.mark.skip(reason="later")
def test_skipped():
    pass


@pytest.mark.parametrize("x", [1, 2])
def test_half_fails(x):
    assert x == 1


@settings(deadline=None, max_examples=5)
@given(st.integers())
def test_property(n):
    assert n == n


def test_two_verdicts():
    assert falsify("one is small", 1, 2).holds
    assert not falsify("three is small", 3, 2).holds


@pytest.fixture
def broken():
    raise RuntimeError("setup")


def test_setup_error(broken):
    pass
"""


def test_the_plugin_records_outcomes_kinds_and_verdicts(tmp_path, monkeypatch):
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_x_recorded.py").write_text(INNER)
    (tmp_path / "test_x_skipped_file.py").write_text(
        'import pytest\n\npytest.skip("TODO", allow_module_level=True)\n'
    )
    report = tmp_path / "report.json"
    monkeypatch.setenv(REPORT_ENV, str(report))
    original = Verdict.__post_init__
    args = [str(tmp_path), "-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path)]
    args += ["-q", "-p", "no:cacheprovider", "-W", QUIET, "-p", "coursekit.workspace.pytest_plugin"]
    assert pytest.main(args) == pytest.ExitCode.TESTS_FAILED
    assert Verdict.__post_init__ is original  # put back at the end of the session
    data = json.loads(report.read_text())
    rows = {row["nodeid"].split("::", 1)[1]: row for row in data["tests"]}
    outcomes = {name: row["outcome"] for name, row in rows.items()}
    assert outcomes == {
        "test_passes": "passed",
        "test_fails": "failed",
        "test_skipped": "skipped",
        "test_half_fails[1]": "passed",
        "test_half_fails[2]": "failed",
        "test_property": "passed",
        "test_two_verdicts": "passed",
        "test_setup_error": "failed",
    }
    assert [name for name, row in rows.items() if row["property"]] == ["test_property"]
    assert {name: row["verdicts"] for name, row in rows.items() if row["verdicts"]} == {
        "test_two_verdicts": 2
    }
    assert rows["test_half_fails[2]"]["function"] == "test_x_recorded.py::test_half_fails"
    assert rows["test_passes"]["path"] == "test_x_recorded.py"
    assert data["skipped_files"] == ["test_x_skipped_file.py"]
    assert data["exitstatus"] == 1 and data["collect_errors"] == []


def test_without_the_variable_the_plugin_writes_nothing(tmp_path, monkeypatch):
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_x_quiet.py").write_text("def test_ok():\n    pass\n")
    monkeypatch.delenv(REPORT_ENV, raising=False)
    args = [str(tmp_path), "-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path), "-q"]
    args += ["-p", "no:cacheprovider", "-W", QUIET, "-p", "coursekit.workspace.pytest_plugin"]
    assert pytest.main(args) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pytest.ini", "test_x_quiet.py"]
