"""coursekit.grading.flags: fingerprints, and the near-duplicate flags with their threshold."""

from __future__ import annotations

import hashlib
import random
import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from coursekit.grading.flags import (
    JACCARD_THRESHOLD,
    MIN_SHINGLES,
    fingerprints,
    jaccard,
    near_duplicates,
    shingles,
    template_shingles,
)
from coursekit.workspace.layout import render

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = render("ENHANCEMENT.md.tmpl", {"name": "ada", "tier_list": "A, E"})


def _prose(doc: str) -> list[str]:
    """The words of a project doc's prose (no code, tables, headings)."""
    text = re.sub(r"```.*?```", " ", (ROOT / "docs" / doc).read_text(), flags=re.S)
    lines = [line for line in text.splitlines() if not line.startswith(("#", "|", "<"))]
    return " ".join(lines).split()


def filled(doc: str, name: str, start: int = 0, per: int = 110) -> str:
    """The template with each section filled by ``per`` words of ``doc``'s prose."""
    words, text = _prose(doc)[start:], TEMPLATE.replace("ada", name)
    for i, section in enumerate(re.findall(r"^## (.+)$", TEMPLATE, re.M)):
        body = " ".join(words[i * per : (i + 1) * per])
        text = text.replace(f"## {section}\n", f"## {section}\n\n{body}\n", 1)
    return text


def _edited(text: str, every: int) -> str:
    """``text`` with every ``every``-th word (when a word) replaced."""
    rng, parts = random.Random(0), text.split(" ")
    for i in range(every - 1, len(parts), every):
        if parts[i].isalpha():
            parts[i] = rng.choice(["really", "quite", "the", "indeed", "some"])
    return " ".join(parts)


def _shingles(text: str) -> set[int]:
    return shingles(text) - template_shingles()


def test_the_threshold_separates_copies_from_independent_texts():
    """The measurements behind JACCARD_THRESHOLD (docs/grading.md, "Near-duplicates")."""
    ada = _shingles(filled("adapters.md", "ada"))
    for doc, start in [("quantization-and-multi-adapter.md", 0), ("training.md", 0),
                       ("memory.md", 0), ("evaluation.md", 900)]:  # fmt: skip
        assert jaccard(ada, _shingles(filled(doc, "bob", start))) < 0.01 < JACCARD_THRESHOLD
    copies = {k: jaccard(ada, _shingles(_edited(filled("adapters.md", "ada"), k))) for k in (5, 10)}
    assert JACCARD_THRESHOLD < copies[5] < copies[10]


def test_the_template_alone_leaves_no_shingle(tmp_path):
    for name, tiers in (("ada", "A, E"), ("bob", "B")):
        text = render("ENHANCEMENT.md.tmpl", {"name": name, "tier_list": tiers})
        (tmp_path / name).mkdir()
        (tmp_path / name / "ENHANCEMENT.md").write_text(text)
        assert fingerprints(tmp_path / name)["shingles"] == []
    uncommented = TEMPLATE.replace("<!--", "").replace("-->", "")  # the guidance kept as text
    left = _shingles(uncommented)  # only those spanning the learner's own tier list
    assert 0 < len(left) <= 2 * 4 < MIN_SHINGLES


def test_fingerprints_hash_adapter_files_and_skip_links(tmp_path):
    run = tmp_path / "ada" / "runs" / "phase1" / "adapter"
    run.mkdir(parents=True)
    (run / "adapter_model.safetensors").write_bytes(b"weights")
    (run / "adapter_config.json").write_text("{}")
    (run.parent / "model.safetensors").write_bytes(b"full")
    (run.parent / "linked.safetensors").symlink_to(run / "adapter_model.safetensors")
    other = tmp_path / "ada" / "runs" / "other"
    other.mkdir()
    (other / "adapter_model.safetensors").symlink_to("/dev/zero")  # never read
    found = fingerprints(tmp_path / "ada")
    digests = sorted(hashlib.sha256(data).hexdigest() for data in (b"weights", b"full"))
    assert found["adapters"] == digests  # the links (one to /dev/zero) are skipped
    assert found["shingles"] == []


def test_same_adapter_and_similar_reports_are_flagged_both_ways():
    copy = _shingles(filled("adapters.md", "ada"))
    rows = [
        {"name": "ada", "fingerprints": {"adapters": ["1a2b3c4d" * 8], "shingles": sorted(copy)}},
        {"name": "bob", "fingerprints": {"adapters": ["1a2b3c4d" * 8], "shingles": sorted(copy)}},
        {"name": "cy", "fingerprints": {"adapters": ["ff" * 32], "shingles": [1, 2, 3]}},
        {"name": "dan", "reason": "broken"},
    ]
    flags = near_duplicates(rows)
    assert flags["ada"] == [
        "ENHANCEMENT.md 100% like bob's (5-word shingles)",
        "same adapter as bob (sha256 1a2b3c4d…)",
    ]
    assert flags["bob"] == [
        "ENHANCEMENT.md 100% like ada's (5-word shingles)",
        "same adapter as ada (sha256 1a2b3c4d…)",
    ]
    assert flags["cy"] == flags["dan"] == []


def test_short_texts_are_not_compared():
    few = list(range(MIN_SHINGLES - 1))
    rows = [{"name": n, "fingerprints": {"shingles": few}} for n in ("ada", "bob")]
    assert near_duplicates(rows) == {"ada": [], "bob": []}


@given(
    sets=st.lists(st.sets(st.integers(0, 40), min_size=MIN_SHINGLES), min_size=2, max_size=5),
    threshold=st.floats(0.05, 1.0),
)
def test_jaccard_flags_are_symmetric(sets, threshold):
    names = [f"l{k}" for k in range(len(sets))]
    pairs = zip(names, sets, strict=True)
    rows = [{"name": n, "fingerprints": {"shingles": sorted(s)}} for n, s in pairs]
    flags = near_duplicates(rows, threshold)
    for a, mine in zip(names, sets, strict=True):
        for b, theirs in zip(names, sets, strict=True):
            if a != b:
                said = [f for f in flags[a] if f.endswith(f"like {b}'s (5-word shingles)")]
                assert bool(said) == bool(flags[b] and any(f"like {a}'s" in f for f in flags[b]))
                assert bool(said) == (jaccard(mine, theirs) >= threshold)
