"""Rust test-generation data: the corpus schema and loading, extraction, prompts, batching."""

from coursekit.data.corpus import Sample, default_corpus_dir, load_corpus, load_splits

__all__ = ["Sample", "default_corpus_dir", "load_corpus", "load_splits"]
