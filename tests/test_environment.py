"""environment.yml and pyproject.toml must pin the same packages at the same versions."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)$")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(requirements) -> dict[str, str]:
    found = {}
    for line in requirements:
        match = PIN.match(line.strip())
        assert match, f"not an exact pin: {line!r} (coursekit pins every dependency with ==)"
        found[_normalise(match[1])] = match[2]
    return found


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    return pins(requirements)


def environment_pins() -> dict[str, str]:
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = environment["dependencies"]
    assert "python=3.11" in deps, "environment.yml must pin python=3.11"
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    return pins([line for line in pip if not line.startswith("-e")])


def test_environment_yml_and_pyproject_agree():
    ours, conda = pyproject_pins(), environment_pins()
    missing = sorted(set(ours) - set(conda))
    extra = sorted(set(conda) - set(ours))
    differ = {k: (ours[k], conda[k]) for k in set(ours) & set(conda) if ours[k] != conda[k]}
    assert not missing, f"in pyproject.toml but not environment.yml: {missing}"
    assert not extra, f"in environment.yml but not pyproject.toml: {extra}"
    assert not differ, f"versions differ (pyproject, environment): {differ}"


def test_torch_is_the_local_cpu_wheel_version():
    assert pyproject_pins()["torch"] == "2.13.0"


def test_the_check_catches_a_disagreement():
    # The comparison is real: a changed version is caught by the same parser.
    changed = pins(["torch==2.12.0"])
    assert changed != {"torch": pyproject_pins()["torch"]}
    try:
        pins(["torch>=2"])
    except AssertionError as error:
        assert "not an exact pin" in str(error)
    else:  # pragma: no cover - the assertion above must fire
        raise AssertionError("a range was accepted as a pin")
