"""What training, evaluation and the nano model read at run time (schema, prompts, batching).

The sample schema and loading, prompts, batching, the token cache, the curriculum and the
Rust syntax helpers; the corpus files themselves are built offline by
:mod:`coursekit.corpus`, which imports from this package, never the other way round.
"""

from coursekit.data.corpus import Sample, default_corpus_dir, load_corpus, load_splits

__all__ = ["Sample", "default_corpus_dir", "load_corpus", "load_splits"]
