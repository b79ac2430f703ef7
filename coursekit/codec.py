"""One codec for every frozen config: to dict, from dict, YAML, and a field-by-field diff.

Every config of coursekit is a ``@dataclass(frozen=True, kw_only=True)`` that validates itself
in ``__post_init__``. This module serialises any of them by walking ``dataclasses.fields`` and
the fields' type hints, so no config keeps a hand-written list of its fields (a hand-kept
list once dropped ``AdapterConfig.layers`` from a run's ``config.yaml``).

Reading coerces each value to its field's type and refuses what it cannot coerce exactly,
with one line naming the field, the value and the fix:

==================  ===================================================================
field type          accepted
==================  ===================================================================
``int``             an int, an integral float (``3.0``) or a numeric string (``"3"``);
                    ``2.5`` and booleans are refused, never rounded
``float``           an int, a float or a numeric string (``"2e-4"``: PyYAML 1.1 reads
                    exponents without a dot as strings); booleans are refused
``bool``            ``true``/``false`` only
``str``             a string only
``Literal[...]``    one of the listed values
``tuple[X, ...]``   a list or tuple, each item coerced to ``X``
nested config       a mapping, read recursively (its unknown keys are named)
``X | None``        ``null`` or an ``X``
==================  ===================================================================

Example:
    >>> from coursekit.train.config import TrainConfig
    >>> from_dict(TrainConfig, {"learning_rate": "2e-4", "max_steps": 20}).learning_rate
    0.0002
    >>> differences(TrainConfig(), TrainConfig(seed=1))
    {'seed': (0, 1)}

Guide: docs/training.md ("Run configs").
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from coursekit.errors import CoursekitError

C = TypeVar("C")


class _Refused(ValueError):
    """A value that cannot be coerced to its field's type; the message says why."""


def to_dict(config: Any) -> dict[str, Any]:
    """Return ``config``'s fields as plain data: nested configs as dicts, tuples as lists.

    The result holds only ``dict``, ``list``, ``str``, ``int``, ``float``, ``bool`` and ``None``,
    so ``yaml.safe_dump`` and ``json.dumps`` write it, and ``from_dict`` reads it back equal.
    """
    return {field.name: _plain(getattr(config, field.name)) for field in dataclasses.fields(config)}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def from_dict(cls: type[C], data: Mapping[str, Any], *, where: str = "") -> C:
    """Build ``cls`` from ``to_dict``'s layout, coercing and validating every value.

    Missing keys take the field's default. ``where`` prefixes field names in messages
    (``RunSpec.train.``); it defaults to the class name.

    Raises:
        ValueError: an unknown key (named, with the known ones), a value of the wrong type
            (field, value and the type it needs), or whatever ``cls`` itself rejects.
    """
    prefix = where or f"{cls.__name__}."
    if not isinstance(data, Mapping):
        raise ValueError(f"{prefix.rstrip('.')} must be a mapping of fields (got {data!r})")
    fields = {field.name: field for field in dataclasses.fields(cls) if field.init}
    unknown = sorted(str(key) for key in data if key not in fields)
    if unknown:
        raise ValueError(
            f"{prefix.rstrip('.')} has no field(s) {unknown}; known fields: {sorted(fields)}"
        )
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in data.items():
        try:
            values[name] = _coerce(value, hints[name], f"{prefix}{name}")
        except _Refused as error:
            raise ValueError(str(error)) from None
    return cls(**values)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return _union(value, args, where)
    if origin is typing.Literal:
        if value not in args:
            raise _Refused(f"{where} must be one of {list(args)} (got {value!r})")
        return value
    if dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else from_dict(hint, value, where=f"{where}.")
    if origin in (tuple, Sequence) or hint in (tuple, Sequence):
        return _sequence(value, args, where)
    scalar = _SCALARS.get(hint)
    return value if scalar is None else scalar(value, where)


def _union(value: Any, args: tuple[Any, ...], where: str) -> Any:
    if value is None and type(None) in args:
        return None
    refusals = []
    for arg in (a for a in args if a is not type(None)):
        try:
            return _coerce(value, arg, where)
        except _Refused as error:
            refusals.append(str(error).removeprefix(f"{where} "))
    raise _Refused(f"{where} {' or '.join(refusals)}")


def _sequence(value: Any, args: tuple[Any, ...], where: str) -> tuple[Any, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        raise _Refused(f"{where} must be a list (got {value!r})")
    item = args[0] if args else Any
    return tuple(_coerce(entry, item, f"{where}[{i}]") for i, entry in enumerate(value))


def _number(value: Any, where: str, kind: str) -> float:
    if isinstance(value, bool):
        raise _Refused(f"{where} must be {kind} (got {value!r})")
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise _Refused(f"{where} must be {kind} (got {value!r})") from None
    if isinstance(value, int | float):
        return value
    raise _Refused(f"{where} must be {kind} (got {value!r})")


def _int(value: Any, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = _number(value, where, "a whole number")
    if not math.isfinite(number) or number != int(number):
        raise _Refused(f"{where} must be a whole number (got {value!r}); it is not rounded")
    return int(number)


def _float(value: Any, where: str) -> float:
    return float(_number(value, where, "a number"))


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise _Refused(f"{where} must be true or false (got {value!r})")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _Refused(f"{where} must be a string (got {value!r})")
    return value


_SCALARS = {int: _int, float: _float, bool: _bool, str: _str}


def check_types(config: Any) -> None:
    """Raise unless every field of ``config`` holds a value of its annotated type.

    Called first in a config's ``__post_init__``, so that ``TrainConfig(max_steps=2.5)`` or
    ``AdapterConfig(alpha="16")`` is refused with a one-line message instead of being rounded
    or failing later with a ``TypeError``. ints pass for float fields (PEP 484).

    Raises:
        ValueError: "<Class>.<field> must be ... (got ...)".
    """
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value, hint = getattr(config, field.name), hints[field.name]
        if not _conforms(value, hint):
            where = f"{type(config).__name__}.{field.name}"
            try:
                coerced = _coerce(value, hint, where)
            except _Refused as error:
                raise ValueError(str(error)) from None
            raise ValueError(f"{where} must be {coerced!r}, not {value!r}; pass the value itself")


def check_rules(config: Any, rules: Iterable[tuple[str, bool, str]]) -> None:
    """Raise for the first ``(field, ok, rule)`` of ``rules`` whose ``ok`` is False.

    The value checks a config's ``__post_init__`` makes after :func:`check_types`.

    Raises:
        ValueError: "<Class>.<field> <rule> (got <value>)".

    Example:
        >>> check_rules(object(), [("x", True, "must be >= 0")])
    """
    for name, ok, rule in rules:
        if not ok:
            value = getattr(config, name)
            raise ValueError(f"{type(config).__name__}.{name} {rule} (got {value!r})")


def _conforms(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if hint is type(None):
        return value is None
    if dataclasses.is_dataclass(hint):
        return isinstance(value, hint)
    if origin in (tuple, Sequence) or hint in (tuple, Sequence):
        item = args[0] if args else Any
        return isinstance(value, tuple) and all(_conforms(entry, item) for entry in value)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return not isinstance(hint, type) or isinstance(value, hint)


def differences(first: Any, second: Any) -> dict[str, tuple[Any, Any]]:
    """Return ``{dotted field: (first's, second's)}`` for every field whose value differs.

    Nested configs are compared field by field (``train.seed``); an empty result means the
    two configs are equal.
    """
    mine, theirs = _flatten(to_dict(first)), _flatten(to_dict(second))
    keys = list(mine) + [key for key in theirs if key not in mine]
    pairs = {key: (mine.get(key), theirs.get(key)) for key in keys}
    return {key: pair for key, pair in pairs.items() if pair[0] != pair[1]}


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def to_yaml(config: Any) -> str:
    """Return ``config`` as YAML text (``to_dict``'s layout, fields in declaration order)."""
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def from_yaml(cls: type[C], path: str | os.PathLike[str]) -> C:
    """Read a YAML file into ``cls`` through ``from_dict``.

    Raises:
        CoursekitError: the file cannot be read or parsed, or a value is refused; the message
            names ``path``, the line of the offending key where it can be found, and the field.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = "" if mark is None else f":{mark.line + 1}"
        raise CoursekitError(
            f"{path}{line}: cannot read the config (YAML: {error.problem or _one_line(error)}); "
            "fix the YAML on that line"
        ) from None
    except RecursionError:
        raise CoursekitError(
            f"{path}: cannot read the config (YAML nested too deeply); a config is a mapping "
            "of fields a few levels deep"
        ) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise CoursekitError(f"{path}: cannot read the config ({_one_line(error)})") from None
    data = {} if data is None else data
    if not isinstance(data, Mapping):
        raise CoursekitError(f"{path}: a config must be a YAML mapping of fields")
    try:
        return from_dict(cls, data)
    except (ValueError, TypeError) as error:
        line = _line_of(text, str(error), cls.__name__)
        raise CoursekitError(f"{path}{line}: {_one_line(error)}") from None


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def _line_of(text: str, message: str, root: str) -> str:
    """Return ``:N``, the YAML line of the key that ``message`` names, or ``""``."""
    lines = _key_lines(yaml.compose(text))
    for key, line in sorted(lines.items(), key=lambda item: -len(item[0])):
        parent, _, leaf = key.rpartition(".")
        owner = f"{root}.{parent}" if parent else root
        if f"{root}.{key} " in message or f".{leaf} " in message:
            return f":{line}"
        if message.startswith(f"{owner} has no field") and f"'{leaf}'" in message:
            return f":{line}"
    return ""


def _key_lines(node: Any, prefix: str = "") -> dict[str, int]:
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = f"{prefix}{key.value}"
            lines[name] = key.start_mark.line + 1
            lines |= _key_lines(value, f"{name}.")
    return lines
