"""The built-in synthetic benchmark suite, the default data source (no registration needed).

A deterministic, seeded generator of skeleton action data that writes the real NTU RGB+D and
PKU-MMD file formats and archive layouts, so everything downstream of the download stage runs
its real code path. Writers return ``[(path, role)]`` with role 'skeleton', 'label' or 'split'.
"""

from skelrep.data.synthetic.actions import CLASSES, PKU2_CLASS_IDS, is_mutual, pku_to_ntu_class
from skelrep.data.synthetic.ntu_writer import (
    NTU60_ARCHIVE,
    NTU120_ARCHIVE,
    SyntheticNTUConfig,
    format_skeleton,
    render_sample,
    write_ntu_archives,
)
from skelrep.data.synthetic.pku_writer import (
    SyntheticPKUConfig,
    recording_names,
    render_recording,
    write_pku_archives,
)

__all__ = [
    "CLASSES", "NTU120_ARCHIVE", "NTU60_ARCHIVE", "PKU2_CLASS_IDS", "SyntheticNTUConfig",
    "SyntheticPKUConfig", "format_skeleton", "is_mutual",
    "pku_to_ntu_class", "recording_names", "render_recording", "render_sample",
    "write_ntu_archives", "write_pku_archives",
]
