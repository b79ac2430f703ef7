"""Record metrics into a notebook's outputs and read them back from an executed notebook.

``record(name, value)`` displays a bundle with a custom MIME type
(:data:`RECORD_MIME`) that the notebook file keeps when it is saved or executed by papermill
or nbclient. It is silent by default: the bundle's ``text/plain`` is empty, so nothing shows
under the table that already displays the value (``show=True`` adds a ``name = value``
line). The empty ``text/plain`` is there because JupyterLab prints "No renderer could be
found" for a bundle it has no renderer for. ``read_records(path)`` walks the cell
outputs with nbformat and returns the recorded values, so a grader reads what a notebook
measured without scraping text (and without the unmaintained scrapbook package).

Used by every phase notebook (first in ``notebooks/phase1_baseline.ipynb``).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

RECORD_MIME = "application/vnd.coursekit.record+json"


def _check_value(name: str, value: Any) -> Any:
    """Return ``value`` if it survives a JSON round trip unchanged, else raise."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"record({name!r}) value must be a finite number (got {value!r})")
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"record({name!r}) value must be JSON-serialisable (got {type(value).__name__}): "
            "pass a number, string, bool, list or dict"
        ) from error


def record(name: str, value: Any, *, show: bool = False) -> None:
    """Display ``value`` under ``name`` as a machine-readable cell output.

    Args:
        name: a non-empty identifier such as ``"val_loss_end"``.
        value: a JSON-serialisable value (numbers must be finite).
        show: also show a ``name = value`` line (in a plain script: print it). By default
            the record is silent: the notebook shows nothing for it.

    Raises:
        ValueError: an empty name, or a value that is not JSON-serialisable.

    Example:
        >>> record("val_loss_end", 2.5)
        >>> record("val_loss_end", 2.5, show=True)
        val_loss_end = 2.5
    """
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.display import display

    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"record name must be a non-empty string (got {name!r})")
    clean = _check_value(name, value)
    text = f"{name} = {clean!r}" if show else ""
    if not InteractiveShell.initialized():  # a plain script: no outputs to record into
        if show:
            print(text)
        return
    display({RECORD_MIME: {"name": name, "value": clean}, "text/plain": text}, raw=True)


def read_records(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the values recorded in an executed notebook, by name (a later record wins).

    Args:
        path: an ``.ipynb`` file, e.g. the output of papermill.

    Returns:
        ``{name: value}`` in the order the cells recorded them.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a readable notebook (names the file).

    Example:
        >>> records = read_records("runs/phase1-baseline/phase1_baseline.ipynb")  # doctest: +SKIP
        >>> records["val_loss_end"]  # doctest: +SKIP
        10.9
    """
    import nbformat

    try:
        notebook = nbformat.read(os.fspath(path), as_version=4)
    except FileNotFoundError:
        raise
    except Exception as error:
        raise ValueError(f"{os.fspath(path)}: not a readable notebook ({error})") from error
    records: dict[str, Any] = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            payload = output.get("data", {}).get(RECORD_MIME)
            if payload is not None:
                records[payload["name"]] = payload["value"]
    return records
