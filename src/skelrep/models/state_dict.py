"""State-dict helpers shared by the official-checkpoint mappings of several methods."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor


def strip_module_prefix(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Remove the ``module.`` prefix that ``nn.DataParallel`` adds to every key."""
    return {k.removeprefix("module."): v for k, v in state_dict.items()}
