"""The nano sweep: fixed-budget variants compared in bits per byte, resumable."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from coursekit.recipes.nano_sweep import (
    bits_per_byte,
    run_sweep,
    sample_documents,
    seconds_per_step,
)
from tests.recipes.conftest import MICRO


@given(st.floats(1.01, 1e4), st.integers(1, 10**6), st.integers(1, 10**7))
def test_bits_per_byte_is_log2_perplexity_per_byte(ppl: float, tokens: int, size: int) -> None:
    bpb = bits_per_byte(ppl, tokens, size)
    assert math.isclose(bpb * size, math.log2(ppl) * tokens, rel_tol=1e-9)
    # the same text cut into twice the tokens at the square root of the perplexity: same bpb
    assert math.isclose(bits_per_byte(math.sqrt(ppl), 2 * tokens, size), bpb, rel_tol=1e-9)


def test_probe_is_positive_and_grows_with_the_batch() -> None:
    small = seconds_per_step(MICRO, repeats=1)
    assert small > 0
    bigger = dataclasses.replace(MICRO, micro_batch_size=64, seq_len=64, max_position_embeddings=64)
    large = seconds_per_step(bigger, repeats=1)
    assert large > small


def test_sweep_builds_each_variant_and_resumes(fixture_corpus: Path, tmp_path: Path) -> None:
    from coursekit.recipes.nano_build import build_nano

    first = build_nano(fixture_corpus, tmp_path / "m", config=MICRO, work_dir=tmp_path / "w",
                       log=lambda _: None)  # fmt: skip
    assert first["text"]["source"] == "training crates"
    text = tmp_path / "text"
    text.mkdir()
    assert sample_documents(tmp_path / "w" / "pretrain.rs", text / "pretrain.rs", 1.0, 0) > 0
    (text / "heldout.rs").write_bytes((tmp_path / "w" / "heldout.rs").read_bytes())
    variants = {"base": {}, "wider": {"hidden_size": 32, "intermediate_size": 64}}
    lines: list[str] = []
    rows = run_sweep(fixture_corpus, text, tmp_path / "sweep", budget_seconds=0.01,
                     variants=variants, base=MICRO, log=lines.append)  # fmt: skip
    assert [r["variant"] for r in rows] == ["base", "wider"]
    assert rows[1]["parameters"] > rows[0]["parameters"]
    assert all(r["steps"] == 20 and r["bits_per_byte"] > 0 for r in rows)  # the floor of steps
    table = (tmp_path / "sweep" / "table.md").read_text()
    assert table.count("| base |") == table.count("| wider |") == 1
    saved = json.loads((tmp_path / "sweep" / "00" / "result.json").read_text())
    assert saved == rows[0]
    again = run_sweep(fixture_corpus, text, tmp_path / "sweep", budget_seconds=0.01,
                      variants=variants, base=MICRO, log=lines.append)  # fmt: skip
    assert again == rows and lines[-1].endswith("done before, kept")
