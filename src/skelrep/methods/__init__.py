"""Method registry: ``params.yaml: method`` picks one; each validates its own section."""

from __future__ import annotations

from ..errors import ParamsError
from .isc.method import ISC, ISCEncoder
from .umurl.method import UmURL, UmURLEncoder
from .usdrl.method import USDRL, USDRLEncoder

METHODS = {"usdrl": USDRL, "umurl": UmURL, "isc": ISC}
ENCODERS = {"usdrl": USDRLEncoder, "umurl": UmURLEncoder, "isc": ISCEncoder}

# The official downstream input of each method (evaluation.md §2, §3): (crop, ratio) of the
# valid sequence, resampled to the clip length. Used by `features.crop: auto`.
DOWNSTREAM_CROP = {"usdrl": ("whole", 1.0), "umurl": ("whole", 1.0), "isc": ("center", 0.95)}


def get_method(name: str, params: dict):
    if name not in METHODS:
        raise ParamsError("method", f"got {name!r}; allowed: {', '.join(METHODS)}")
    if name not in params:
        raise ParamsError(name, "missing section for the selected method")
    return METHODS[name](params[name])


def build_encoder(payload: dict):
    """The frozen feature encoder stored in an encoder file (any method)."""
    method = payload["method"]
    if method not in ENCODERS:
        raise ParamsError("method", f"encoder file of unknown method {method!r}; known: {', '.join(ENCODERS)}")
    encoder = ENCODERS[method](payload).eval()
    encoder.method = method
    return encoder
