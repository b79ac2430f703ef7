"""The bundled seed set: every sample compiles and its tests pass, and the splits are sound."""

from __future__ import annotations

import hashlib

import pytest

from coursekit.data.corpus import SPLITS, Sample, load_splits, seed_dir
from coursekit.evaluate.parallel import compile_and_test_many
from coursekit.evaluate.rust import RustNotFoundError, RustTestResult, find_rustc

SPLIT_SAMPLES = load_splits(seed_dir())
ALL = [sample for split in SPLITS for sample in SPLIT_SAMPLES[split]]


@pytest.fixture(scope="module")
def results() -> dict[str, RustTestResult]:
    try:
        find_rustc()
    except RustNotFoundError as error:
        pytest.skip(str(error))
    outcomes = compile_and_test_many([s.source() for s in ALL], jobs=2)
    return {sample.id: outcome for sample, outcome in zip(ALL, outcomes, strict=True)}


@pytest.mark.slow
@pytest.mark.parametrize("sample", ALL, ids=lambda s: s.id)
def test_sample_compiles_and_passes(sample: Sample, results: dict[str, RustTestResult]) -> None:
    result = results[sample.id]
    assert result.compiled, f"{sample.id} does not compile:\n{result.output}"
    assert result.passed, f"{sample.id} tests fail:\n{result.output}"
    assert 2 <= result.tests_run <= 4


@pytest.mark.parametrize("sample", ALL, ids=lambda s: s.id)
def test_sample_follows_the_seed_conventions(sample: Sample) -> None:
    assert sample.verified
    assert (sample.crate, sample.version, sample.license) == (
        "coursekit-seed",
        "0.1.0",
        "Apache-2.0",
    )
    assert sample.id == f"seed/{sample.path.removeprefix('src/').removesuffix('.rs')}"
    assert sample.function.lstrip().startswith(("///", "impl"))
    assert "///" in sample.function
    assert sample.tests.startswith("#[cfg(test)]\nmod tests {\n    use super::*;")
    assert 2 <= sample.tests.count("#[test]") <= 4
    assert sample.features["tests"] == sample.tests.count("#[test]")
    assert sample.property_tests is None


def test_split_sizes() -> None:
    sizes = {split: len(samples) for split, samples in SPLIT_SAMPLES.items()}
    assert sizes == {"train": 30, "val": 6, "test": 6}


def test_ids_are_unique_and_splits_disjoint() -> None:
    ids = [s.id for s in ALL]
    assert len(ids) == len(set(ids))
    train, val, test = ({s.id for s in SPLIT_SAMPLES[name]} for name in SPLITS)
    assert not (train & val or train & test or val & test)


def test_split_is_the_documented_hash_order() -> None:
    order = sorted(ALL, key=lambda s: hashlib.sha256(s.id.encode()).hexdigest())
    expected = {"test": order[:6], "val": order[6:12], "train": order[12:]}
    for split, samples in expected.items():
        assert [s.id for s in SPLIT_SAMPLES[split]] == sorted(s.id for s in samples)
