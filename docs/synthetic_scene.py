"""Draw docs/synthetic_scene.png: a synthetic DTU-like scan seen from a few views.

Rows: the realistic style's 640x512 image under light 3 (all lamps) and light 0 (one lamp: cast
shadows), its 160x128 ground-truth depth and the ``mvs`` preset's simulated initial depth, then the
classic style's image of its own scene for comparison. Run from the repository root::

    python docs/synthetic_scene.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from deltaz.ops.corrupt import sample_seed, simulate_initial_depth  # noqa: E402
from deltaz.io.dtu.cameras import scale_intrinsics  # noqa: E402
from deltaz.io.synthetic import dataset_cameras, make_scan_scene, render_depth, render_view, shade_lights  # noqa: E402
from deltaz.io.synthetic import render_images  # noqa: E402
from deltaz.io.synthetic.writer import camera_azimuth_of  # noqa: E402


def main(out: Path = Path(__file__).resolve().parent / "synthetic_scene.png", seed: int = 0, scan: int = 1) -> Path:
    K, E, placement = dataset_cameras(49)
    scene = make_scan_scene(seed, scan, placement, "real", camera_azimuth_of(E, placement))
    classic = make_scan_scene(seed, scan, placement)
    views = (0, 10, 24, 40)
    fig, axes = plt.subplots(5, len(views), figsize=(3.2 * len(views), 12.6), constrained_layout=True)
    depths = [render_depth(scene, K[v], E[v], 128, 160) for v in views]
    valid = np.concatenate([d[d > 0] for d in depths])
    vmin, vmax = np.percentile(valid, 1), np.percentile(valid, 99)
    for col, (v, depth) in enumerate(zip(views, depths)):
        lit, one_lamp = render_images(scene, scale_intrinsics(K[v], 4), E[v], 512, 640, [3, 0], (seed, scan, v))
        generator = torch.Generator().manual_seed(sample_seed(f"scan{scan}", v))
        init = simulate_initial_depth(torch.as_tensor(depth), "mvs", generator)
        axes[0, col].imshow(lit)
        axes[0, col].set_title(f"view {v}: real style, light 3")
        axes[1, col].imshow(one_lamp)
        axes[1, col].set_title("light 0 (one lamp)")
        axes[4, col].imshow(shade_lights(render_view(classic, scale_intrinsics(K[v], 4), E[v], 512, 640), [3])[0])
        axes[4, col].set_title("classic style, light 3")
        for row, (data, title) in enumerate(((depth, "ground truth"), (init.numpy(), "initial (mvs preset)")), start=2):
            shown = np.ma.masked_where(data <= 0, data)
            im = axes[row, col].imshow(shown, cmap="turbo", vmin=vmin, vmax=vmax, interpolation="nearest")
            axes[row, col].set_title(f"{title}, 160x128")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes[2:4, :], shrink=0.8, label="z-depth (mm); white = no value")
    fig.suptitle(f"deltaz synth: scan{scan} (seed {seed}), DTU-like rig 608 mm from its target", fontsize=12)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


if __name__ == "__main__":
    print(main())
