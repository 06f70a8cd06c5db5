"""DTU: its file formats, cameras, scan splits, the train-ready layout and the parser.

* :mod:`deltaz.io.dtu.formats` — PFM, cam files, ``pair.txt``, raw projection matrices (DESIGN.md §2);
* :mod:`deltaz.io.dtu.cameras` — resizing/cropping intrinsics, raw calibration → training cameras;
* :mod:`deltaz.io.dtu.splits`  — MVSNet's train/val/test scan lists;
* :mod:`deltaz.io.dtu.layout`  — read and write the train-ready layout (DESIGN.md §3);
* :mod:`deltaz.io.dtu.parse`   — ``deltaz parse``: ``dtu_training`` / raw DTU → train-ready scans.
"""

from deltaz.io.dtu.cameras import (
    crop_intrinsics,
    raw_to_camera,
    raw_to_mvsnet_camera,
    raw_to_training_camera,
    resize_intrinsics,
    scale_intrinsics,
)
from deltaz.io.dtu.formats import (
    CamFile,
    atomic_write_bytes,
    atomic_write_text,
    decompose_projection,
    read_cam_file,
    read_pair_file,
    read_pfm,
    read_png,
    read_projection,
    write_cam_file,
    write_pair_file,
    write_pfm,
)
from deltaz.io.dtu.layout import (
    LAYOUT_VERSION,
    META_KEYS,
    ScanWriter,
    is_complete_scan,
    list_scans,
    list_views,
    load_view,
    read_meta,
    read_scan_pairs,
    write_scan,
)
from deltaz.io.dtu.splits import scan_list

__all__ = [
    "crop_intrinsics",
    "raw_to_camera",
    "raw_to_mvsnet_camera",
    "raw_to_training_camera",
    "resize_intrinsics",
    "scale_intrinsics",
    "scan_list",
    "CamFile",
    "atomic_write_bytes",
    "atomic_write_text",
    "decompose_projection",
    "read_cam_file",
    "read_pair_file",
    "read_pfm",
    "read_png",
    "read_projection",
    "write_cam_file",
    "write_pair_file",
    "write_pfm",
    "LAYOUT_VERSION",
    "META_KEYS",
    "ScanWriter",
    "is_complete_scan",
    "list_scans",
    "list_views",
    "load_view",
    "read_meta",
    "read_scan_pairs",
    "write_scan",
]
