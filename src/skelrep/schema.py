"""The one validation dialect of ``params.yaml``.

A section's schema is a dict ``key -> validator``; a validator takes ``(value, dotted_key)`` and
returns the (normalised) value or raises :class:`~skelrep.errors.ParamsError` naming the dotted
key: ``got X; expected ...`` (or ``allowed: ...``). :func:`validate` requires every key and
rejects unknown ones with the allowed list; there are no silent defaults (a method's paper
values live once in ``methods/<m>/defaults.py``). Cross-field rules go in a ``check`` hook of
:func:`validate` / :func:`mapping`: ``check(values, prefix)`` runs on the validated values and
raises ParamsError itself.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

from .errors import ParamsError

Validator = Callable[[Any, str], Any]
Check = Callable[[dict, str], None]

__all__ = [
    "Check", "Validator", "boolean", "choice", "integer", "list_of", "mapping", "number", "optional",
    "options", "positive", "string", "validate",
]


def choice(*allowed: Any) -> Validator:
    def check(value: Any, key: str) -> Any:
        if value not in allowed:
            raise ParamsError(key, f"got {value!r}; allowed: {', '.join(map(repr, allowed))}")
        return value

    return check


def boolean(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ParamsError(key, f"got {value!r}; allowed: true or false")
    return value


def integer(lo: int | None = None, hi: int | None = None) -> Validator:
    """An int (not a bool: ``hidden: true`` is a typo, not 1) in ``[lo, hi]``."""

    def check(value: Any, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(key, f"got {value!r}; expected an integer{_interval(lo, hi)}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ParamsError(key, f"got {value!r}; expected an integer{_interval(lo, hi)}")
        return value

    return check


def number(lo: float | None = None, hi: float | None = None, *, open_lo: bool = False,
           open_hi: bool = False) -> Validator:
    """A finite int or float, returned as float, in ``[lo, hi]``; ``open_lo``/``open_hi`` exclude a bound."""

    def check(value: Any, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            hint = " (YAML reads 1e-4 as a string: write 1.0e-4)" if isinstance(value, str) else ""
            raise ParamsError(key, f"got {value!r}; expected a number{_interval(lo, hi, open_lo, open_hi)}{hint}")
        value = float(value)
        below = lo is not None and (value <= lo if open_lo else value < lo)
        above = hi is not None and (value >= hi if open_hi else value > hi)
        if not math.isfinite(value) or below or above:
            raise ParamsError(key, f"got {value!r}; expected a finite number{_interval(lo, hi, open_lo, open_hi)}")
        return value

    return check


def positive(hi: float | None = None) -> Validator:
    """A number in ``(0, hi]``: strictly above zero (an epsilon, a temperature)."""
    return number(0.0, hi, open_lo=True)


def string(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise ParamsError(key, f"got {value!r}; expected a non-empty string")
    return value


def optional(validator: Validator) -> Validator:
    """``null`` or what ``validator`` accepts (the key itself is still required)."""

    def check(value: Any, key: str) -> Any:
        return None if value is None else validator(value, key)

    return check


def list_of(validator: Validator, min_len: int = 0, max_len: int | None = None) -> Validator:
    def check(value: Any, key: str) -> list:
        if not isinstance(value, (list, tuple)) or len(value) < min_len or (
                max_len is not None and len(value) > max_len):
            raise ParamsError(key, f"got {value!r}; expected a list of {_count(min_len, max_len)}")
        return [validator(v, f"{key}[{i}]") for i, v in enumerate(value)]

    return check


def distinct(validator: Validator, what: str, why: str = "") -> Validator:
    """``validator`` (a list's), then no item twice: ``got [...]; each <what> once[ (<why>)]``."""
    def check(value: Any, key: str) -> list:
        items = validator(value, key)
        if len(set(items)) != len(items):
            raise ParamsError(key, f"got {value!r}; each {what} once" + (f" ({why})" if why else ""))
        return items

    return check


def mapping(schema: Mapping[str, Validator], check: Check | None = None) -> Validator:
    """A nested section: :func:`validate` with ``schema`` (and ``check``) under the dotted key."""

    def validator(value: Any, key: str) -> dict:
        return validate(value, schema, key, check)

    return validator


def validate(section: Any, schema: Mapping[str, Validator], prefix: str, check: Check | None = None) -> dict:
    """Validate ``section`` against ``schema``: every key required, unknown keys rejected,
    then ``check(values, prefix)`` for the rules that span keys."""
    if not isinstance(section, Mapping):
        raise ParamsError(prefix, f"got {section!r}; expected a mapping with keys {', '.join(schema)}")
    unknown = sorted(set(section) - set(schema))
    if unknown:
        raise ParamsError(f"{prefix}.{unknown[0]}", f"unknown key; allowed keys: {', '.join(schema)}")
    missing = [k for k in schema if k not in section]
    if missing:
        raise ParamsError(f"{prefix}.{missing[0]}", f"missing; required keys: {', '.join(schema)}")
    values = {k: schema[k](section[k], f"{prefix}.{k}") for k in schema}
    if check is not None:
        check(values, prefix)
    return values


def options(cls: type) -> Validator:
    """Optional overrides of a dataclass's documented defaults (a generator's knobs, where
    ``{}`` means "the defaults"): unknown keys rejected, lists read as tuples, the values checked
    by the dataclass itself. Returns the dataclass instance. For configuration sections, where
    every key is required, use :func:`mapping`."""
    names = [f.name for f in dataclasses.fields(cls)]

    def check(value: Any, key: str) -> Any:
        if not isinstance(value, Mapping):
            raise ParamsError(key, f"got {value!r}; expected a mapping of options ({', '.join(names)})")
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ParamsError(f"{key}.{unknown[0]}", f"unknown key; allowed keys: {', '.join(names)}")
        try:
            return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})
        except (TypeError, ValueError) as exc:
            raise ParamsError(key, f"got {dict(value)!r}; {exc}") from None

    return check


def _interval(lo: float | None, hi: float | None, open_lo: bool = False, open_hi: bool = False) -> str:
    if lo is None and hi is None:
        return ""
    left = "(" if open_lo else "["
    right = ")" if open_hi else "]"
    return f" in {left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"


def _count(lo: int, hi: int | None) -> str:
    if hi is None:
        return f"at least {lo} items" if lo else "items"
    return f"exactly {lo} items" if lo == hi else f"{lo} to {hi} items"
