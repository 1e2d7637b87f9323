"""The method registry: the one list of the methods ``params.yaml: method`` can pick.

A method is one package under this folder: its ``__init__`` declares a ``base.MethodInfo``
(what the method is; no torch), its ``schema.py`` validates its ``params.yaml`` section (no
torch), its ``method.py`` implements ``base.Method`` (what it does), its ``defaults.py`` holds
its paper values. Adding a method = adding its folder and one
line below (docs/adding_a_method.md). Everything else (validation, the stages, the report,
MLflow, profiles, the benchmark) looks the method up here.

Looking a method up and validating its section (``METHODS[name].validate_section``) never load
torch; ``METHODS[name].load()`` imports its implementation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ParamsError
from .base import FeatureEncoder, Method, MethodInfo, resolve

__all__ = ["METHODS", "FeatureEncoder", "Method", "MethodInfo", "build_encoder", "get_method"]


def _register(entries: Mapping[str, str]) -> dict[str, type[MethodInfo]]:
    methods = {name: resolve(path) for name, path in entries.items()}
    for name, info in methods.items():
        if not (isinstance(info, type) and issubclass(info, MethodInfo) and info.name == name):
            raise TypeError(f"METHODS[{name!r}] must be a MethodInfo subclass whose name is {name!r}")
    return methods


# name -> "package:MethodInfo class", in table order
METHODS: dict[str, type[MethodInfo]] = _register({
    "usdrl": "skelrep.methods.usdrl:USDRLInfo",
    "umurl": "skelrep.methods.umurl:UmURLInfo",
    "isc": "skelrep.methods.isc:ISCInfo",
})


def get_method(name: str, params: Mapping[str, Any]) -> Method:
    """The selected method, its section of ``params`` validated."""
    if name not in METHODS:
        raise ParamsError("method", f"got {name!r}; allowed: {', '.join(METHODS)}")
    if name not in params:
        raise ParamsError(name, "missing section for the selected method")
    return METHODS[name].load()(params[name])


def build_encoder(payload: dict) -> FeatureEncoder:
    """The frozen feature encoder stored in an encoder file (any method)."""
    method = payload["method"]
    if method not in METHODS:
        raise ParamsError("method", f"encoder file of unknown method {method!r}; known: {', '.join(METHODS)}")
    encoder = METHODS[method].load().encoder(payload).eval()
    encoder.method = method
    return encoder
