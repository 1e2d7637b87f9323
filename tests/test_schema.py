"""skelrep.schema: the one validation dialect of params.yaml (accept, reject, messages)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from skelrep.errors import ParamsError
from skelrep.schema import (
    boolean,
    choice,
    integer,
    list_of,
    mapping,
    number,
    optional,
    options,
    positive,
    string,
    validate,
)

from .conftest import REPO_ROOT


def _reject(validator, value, key="s.k"):
    with pytest.raises(ParamsError) as info:
        validator(value, key)
    return info.value


def test_choice():
    assert choice("a", "b")("b", "s.k") == "b"
    err = _reject(choice("a", "b"), "c")
    assert err.key == "s.k" and err.reason == "got 'c'; allowed: 'a', 'b'"


def test_boolean():
    assert boolean(False, "s.k") is False
    assert _reject(boolean, "yes").reason == "got 'yes'; allowed: true or false"
    assert _reject(boolean, 1).key == "s.k"


def test_integer():
    assert integer(1)(3, "s.k") == 3 and integer()(-5, "s.k") == -5
    assert _reject(integer(1), 0).reason == "got 0; expected an integer in [1, inf]"
    assert _reject(integer(0, 25), 26).reason == "got 26; expected an integer in [0, 25]"
    assert "expected an integer" in _reject(integer(), True).reason  # a bool is not an int
    assert "expected an integer" in _reject(integer(), 2.0).reason


def test_number():
    value = number(0.0, 1.0)(1, "s.k")
    assert value == 1.0 and isinstance(value, float)
    assert _reject(number(0.0, 1.0), 1.5).reason == "got 1.5; expected a finite number in [0.0, 1.0]"
    assert _reject(number(0.0, 1.0, open_hi=True), 1.0).reason.endswith("in [0.0, 1.0)")
    assert _reject(number(), float("nan")).reason.startswith("got nan; expected a finite number")
    assert "write 1.0e-4" in _reject(number(), "1e-4").reason  # YAML reads 1e-4 as a string
    assert "expected a number" in _reject(number(), False).reason


def test_positive():
    assert positive()(1e-4, "s.k") == 1e-4
    assert _reject(positive(), 0).reason == "got 0.0; expected a finite number in (0.0, inf]"
    assert positive(1.0)(1.0, "s.k") == 1.0 and _reject(positive(1.0), 1.5).key == "s.k"


def test_string():
    assert string("x", "s.k") == "x"
    assert _reject(string, "").reason == "got ''; expected a non-empty string"
    assert _reject(string, 3).key == "s.k"


def test_optional():
    assert optional(integer(1))(None, "s.k") is None and optional(integer(1))(2, "s.k") == 2
    assert _reject(optional(integer(1)), 0).key == "s.k"


def test_list_of():
    assert list_of(integer(0))([1, 2], "s.k") == [1, 2]
    assert list_of(number(), 2, 2)((1, 2), "s.k") == [1.0, 2.0]
    assert _reject(list_of(integer(0), 3, 3), [1]).reason == "got [1]; expected a list of exactly 3 items"
    assert _reject(list_of(integer(0), 1), []).reason == "got []; expected a list of at least 1 items"
    assert _reject(list_of(integer(0)), "x").reason == "got 'x'; expected a list of items"
    assert _reject(list_of(integer(0)), [1, -1]).key == "s.k[1]"  # the item is named


SCHEMA = {"a": integer(1), "b": mapping({"c": boolean})}


def test_validate_requires_every_key_and_rejects_unknown_ones():
    assert validate({"a": 2, "b": {"c": True}}, SCHEMA, "s") == {"a": 2, "b": {"c": True}}
    with pytest.raises(ParamsError) as info:
        validate({"b": {"c": True}}, SCHEMA, "s")
    assert info.value.key == "s.a" and info.value.reason == "missing; required keys: a, b"
    with pytest.raises(ParamsError) as info:
        validate({"a": 2, "b": {}}, SCHEMA, "s")
    assert info.value.key == "s.b.c" and "missing" in info.value.reason
    with pytest.raises(ParamsError) as info:
        validate({"a": 2, "b": {"c": True}, "z": 1}, SCHEMA, "s")
    assert info.value.key == "s.z" and info.value.reason == "unknown key; allowed keys: a, b"
    with pytest.raises(ParamsError) as info:
        validate([1], SCHEMA, "s")
    assert info.value.key == "s" and info.value.reason == "got [1]; expected a mapping with keys a, b"
    with pytest.raises(ParamsError) as info:
        validate(None, SCHEMA, "s")  # an empty YAML section is not "all defaults"
    assert info.value.key == "s"
    assert str(info.value).startswith("params.yaml: s: got None")


def test_check_hook_runs_on_the_validated_values():
    def lo_below_hi(v, key):
        if v["lo"] > v["hi"]:
            raise ParamsError(f"{key}.lo", f"got {v['lo']}; expected <= hi={v['hi']}")

    schema = {"lo": number(), "hi": number()}
    assert validate({"lo": 1, "hi": 2}, schema, "s", lo_below_hi) == {"lo": 1.0, "hi": 2.0}
    with pytest.raises(ParamsError) as info:
        mapping(schema, lo_below_hi)({"lo": 3, "hi": 2}, "s.r")
    assert info.value.key == "s.r.lo" and info.value.reason == "got 3.0; expected <= hi=2.0"


@dataclass(frozen=True)
class _Knobs:
    size: int = 4
    span: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self):
        if self.size < 1:
            raise ValueError("size must be >= 1")


def test_options_are_overrides_of_documented_defaults():
    assert options(_Knobs)({}, "s.k") == _Knobs()
    assert options(_Knobs)({"span": [0.5, 1.0]}, "s.k") == _Knobs(span=(0.5, 1.0))
    err = _reject(options(_Knobs), {"sise": 1})
    assert err.key == "s.k.sise" and err.reason == "unknown key; allowed keys: size, span"
    err = _reject(options(_Knobs), {"size": 0})
    assert err.key == "s.k" and "size must be >= 1" in err.reason
    assert _reject(options(_Knobs), None).key == "s.k"


def test_no_private_validation_helpers_are_left():
    """One dialect: no module re-implements the validators (private _int/_number/_choice/... helpers,
    dataclass_from_params, an if-chain over aug fields, rewritten ParamsError text)."""
    pattern = re.compile(r"^def (_int|_number|_choice|_check_keys|_section|_with_defaults|_positive|"
                         r"_plain_mapping|_validated|_is_number|_is_int|dataclass_from_params|validate_train)\(",
                         re.MULTILINE)
    offenders = [str(path.relative_to(REPO_ROOT)) for path in sorted(Path(REPO_ROOT, "src", "skelrep").rglob("*.py"))
                 if pattern.search(path.read_text(encoding="utf-8"))]
    assert offenders == []
