"""The offline corpus factory: Debian crate sources, extraction, verification, splits, datasheet.

It builds the ``data/corpus`` files (``coursekit corpus ...``) that training reads through
:mod:`coursekit.data`; it imports from :mod:`coursekit.data`, never the other way round.
"""
