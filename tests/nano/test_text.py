"""Pretraining rows and the pretraining / held-out text of a corpus."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from coursekit.corpus.pretrain_text import (
    DOCUMENT_SEPARATOR,
    read_documents,
    write_heldout_text,
    write_pretrain_text,
)
from coursekit.data.corpus import load_splits
from coursekit.nano.text import rows, sample_rows, token_stream


@given(st.lists(st.integers(0, 99), max_size=200), st.integers(1, 20))
def test_rows_cut_the_stream_in_order_and_drop_the_tail(stream: list[int], seq_len: int) -> None:
    cut = rows(stream, seq_len)
    assert len(cut) == len(stream) // seq_len
    assert [t for r in cut for t in r.input_ids] == stream[: len(cut) * seq_len]
    assert all(r.labels == r.input_ids for r in cut)


def test_sample_rows_is_seeded_and_ordered() -> None:
    every = rows(list(range(100)), 2)
    picked = sample_rows(every, 10, seed=3)
    assert picked == sample_rows(every, 10, seed=3) != sample_rows(every, 10, seed=4)
    assert [r.sample_id for r in picked] == sorted(
        (r.sample_id for r in picked), key=lambda s: int(s.split("-")[1])
    )
    assert sample_rows(every, 500, seed=0) == every


class _Tok:
    def convert_tokens_to_ids(self, token: str) -> int:
        assert token == "<|endoftext|>"
        return 0

    def __call__(self, docs: list[str], verbose: bool) -> dict:
        return {"input_ids": [[len(d)] for d in docs]}


def test_token_stream_ends_every_document() -> None:
    assert token_stream(["ab", "abc"] * 200, _Tok())[:4] == [2, 0, 3, 0]
    assert len(token_stream(["ab"] * 300, _Tok())) == 600


def test_pretraining_and_heldout_text_never_share_crates(fixture_corpus: Path, tmp_path) -> None:
    splits = load_splits(fixture_corpus)
    train = write_pretrain_text(fixture_corpus, tmp_path / "train.rs")
    held = write_heldout_text(fixture_corpus, tmp_path / "held.rs")
    assert (train["crates"], held["crates"]) == (1, 2)

    def heads(path):
        return {d.split("\n", 1)[0].split()[1].split("/")[0] for d in read_documents(path)}

    assert heads(tmp_path / "train.rs") == {s.crate for s in splits["train"]} == {"mini"}
    assert heads(tmp_path / "held.rs") == {"macros", "props"}
    text = (tmp_path / "held.rs").read_text()
    assert text.endswith(DOCUMENT_SEPARATOR) and text.count(DOCUMENT_SEPARATOR) == held["files"]


def test_heldout_text_drops_files_also_in_training(fixture_corpus: Path, tmp_path: Path) -> None:
    import shutil

    from coursekit.corpus.manifest import read_manifest

    mini = next(e for e in read_manifest(fixture_corpus / "manifest.txt") if e.crate == "mini")
    corpus = tmp_path / "corpus"
    shutil.copytree(fixture_corpus, corpus)
    source = Path(mini.source)
    copy = tmp_path / "macros"
    macros = next(e for e in read_manifest(corpus / "manifest.txt") if e.crate == "macros")
    shutil.copytree(macros.source, copy)
    shutil.copy(source / "src" / "lib.rs", copy / "src" / "from_mini.rs")
    manifest = (corpus / "manifest.txt").read_text().replace(macros.source, str(copy))
    (corpus / "manifest.txt").write_text(manifest)
    assert write_heldout_text(corpus, tmp_path / "held.rs")["excluded"] == 1
