"""Synthetic DTU-like scenes: textured solids on a table, seen by a DTU-like rig, ray cast exactly.

* :mod:`deltaz.io.synthetic.rig`    — DTU's lens and a 49-view sphere-cap rig, or the real DTU cameras;
* :mod:`deltaz.io.synthetic.scene`  — random classic scenes (ellipsoids, boxes, cylinders, capsules; solid textures);
* :mod:`deltaz.io.synthetic.scene_real` — realistic scenes (walls, corners, thin structures, varied scale);
* :mod:`deltaz.io.synthetic.photo`  — CC0 / public-domain photo textures from scikit-image;
* :mod:`deltaz.io.synthetic.render` — exact vectorised ray casting (z-depth), normals, albedo, Lambertian light;
* :mod:`deltaz.io.synthetic.lighting` — cast shadows, speculars, supersampling, a noisy camera (style "real");
* :mod:`deltaz.io.synthetic.pairs`  — ``pair.txt`` from the overlap of the ground-truth depth maps;
* :mod:`deltaz.io.synthetic.writer` — the ``dtu_training`` layout on disk (``generate_dataset``);
* :mod:`deltaz.apps.synth_cli`    — ``deltaz synth``.

Explained in notebooks/01_dtu_on_disk.ipynb.
"""

from deltaz.io.synthetic.lighting import RenderOptions, render_images
from deltaz.io.synthetic.pairs import select_pairs, view_scores
from deltaz.io.synthetic.render import light_rig, render_depth, render_rays, render_view, shade, shade_lights
from deltaz.io.synthetic.rig import dtu_intrinsics, look_at, make_rig, rig_from_calibration
from deltaz.io.synthetic.scene import Scene, Solid, Texture, random_scene, scene_rng
from deltaz.io.synthetic.scene_real import random_real_scene
from deltaz.io.synthetic.writer import STYLES, dataset_cameras, generate_dataset, make_scan_scene

__all__ = [
    "STYLES",
    "RenderOptions",
    "Scene",
    "Solid",
    "Texture",
    "dataset_cameras",
    "dtu_intrinsics",
    "generate_dataset",
    "light_rig",
    "look_at",
    "make_rig",
    "make_scan_scene",
    "random_real_scene",
    "random_scene",
    "render_images",
    "render_depth",
    "render_rays",
    "render_view",
    "rig_from_calibration",
    "scene_rng",
    "select_pairs",
    "shade",
    "shade_lights",
    "view_scores",
]
