"""The committed corpus (data/corpus): held-out goals, no contamination of nano, references pass.

These read the files learners train and evaluate on, so they fail when a rebuild breaks a
promise the docs make: val and test hold enough verified samples to tell methods apart, no
crate whose source the bundled nano model was pretrained on is in val or test (its build
record lists them), and the reference tests of verified samples compile and pass.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from coursekit.corpus.manifest import read_crate_list, read_manifest
from coursekit.data.corpus import default_corpus_dir, load_splits
from coursekit.evaluate.parallel import compile_and_test_many
from coursekit.evaluate.rust import PRELUDE
from coursekit.loading import resolve_model

CORPUS = default_corpus_dir()
CHECKED = 24
"""Verified samples re-run on every CI run (the whole set: `coursekit eval --reference`)."""


@pytest.fixture(scope="module")
def splits():
    return load_splits(CORPUS)


def test_held_out_splits_meet_their_verified_goals(splits) -> None:
    build = json.loads((CORPUS / "build.json").read_text())
    verified = {name: sum(s.verified for s in part) for name, part in splits.items()}
    assert verified == build["verified"]
    assert verified["test"] >= 250 and verified["val"] >= 150, verified
    assert build["verified_goals_met"] is True


def test_no_crate_is_in_two_splits_and_the_manifest_lists_each(splits) -> None:
    crates = {name: {s.crate for s in part} for name, part in splits.items()}
    assert not (crates["train"] & crates["val"] or crates["train"] & crates["test"])
    assert not crates["val"] & crates["test"]
    listed = {e.crate for e in read_manifest(CORPUS / "manifest.txt")}
    assert listed == crates["train"] | crates["val"] | crates["test"]


@pytest.mark.parametrize("model", ["nano", "nano-base"])
def test_no_bundled_model_saw_a_val_or_test_crate(splits, model) -> None:
    seen = set(read_crate_list(Path(resolve_model(model)) / "build.json"))
    held_out = {s.crate for name in ("val", "test") for s in splits[name]}
    assert len(seen) > 100  # the record is there and not empty
    assert not seen & held_out, sorted(seen & held_out)[:10]
    pinned = json.loads((CORPUS / "build.json").read_text())["config"]["train_only"]
    pretrain = {e.crate for e in read_manifest(CORPUS / "pretrain-manifest.txt")}
    assert seen <= {s.crate for s in splits["train"]} | set(pinned) | pretrain


@pytest.mark.slow
def test_a_seeded_draw_of_verified_references_compiles_and_passes(rustc, splits) -> None:
    verified = [s for name in ("val", "test") for s in splits[name] if s.verified]
    drawn = random.Random(0).sample(verified, CHECKED)
    results = compile_and_test_many([PRELUDE + s.source() for s in drawn], timeout_s=20)
    pairs = zip(drawn, results, strict=True)
    failed = [(s.id, r.compiled, r.tests_failed) for s, r in pairs if not r.passed]
    assert not failed
