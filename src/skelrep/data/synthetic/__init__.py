"""The built-in synthetic benchmark suite, the default data source (no registration needed).

A deterministic, seeded generator of skeleton action data that writes the real NTU RGB+D and
PKU-MMD file formats and archive layouts, so everything downstream of the download stage runs
its real code path. Writers return ``[(path, role)]`` with role 'skeleton', 'label' or 'split'.

The names below load their module on first use (PEP 562): validating params.yaml, every
stage's first step, needs only the settings (``config``), not numpy and the motion tables.
"""

from __future__ import annotations

_CONFIG = ("SyntheticNTUConfig", "SyntheticPKUConfig")
_ACTIONS = ("CLASSES", "PKU2_CLASS_IDS", "is_mutual", "pku_to_ntu_class")
_NTU_WRITER = ("NTU60_ARCHIVE", "NTU120_ARCHIVE", "format_skeleton", "render_sample", "write_ntu_archives")
_PKU_WRITER = ("recording_names", "render_recording", "write_pku_archives")

__all__ = sorted(_CONFIG + _ACTIONS + _NTU_WRITER + _PKU_WRITER)


def __getattr__(name: str):
    if name in _CONFIG:
        from . import config as module
    elif name in _ACTIONS:
        from . import actions as module
    elif name in _NTU_WRITER:
        from . import ntu_writer as module
    elif name in _PKU_WRITER:
        from . import pku_writer as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(module, name)
    globals()[name] = value  # the next access is a plain lookup
    return value
