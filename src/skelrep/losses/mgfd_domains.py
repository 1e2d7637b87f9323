"""The domains of MG-FD and their default mix (torch-free: the ``usdrl`` schema names its
``loss.domain_mix`` keys from it; :mod:`skelrep.losses.mgfd` mixes the terms with it)."""

from __future__ import annotations

# temporal t, spatial s, instance i: each term mixed as i + 0.5 (t + s)
DEFAULT_DOMAIN_MIX = {"i": 1.0, "t": 0.5, "s": 0.5}
