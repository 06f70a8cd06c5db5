"""``deltaz refine --depth DIR --image DIR --out DIR``: every depth map of a folder, paired with its image by name.

Pairing: a depth map ``<stem><depth ending>`` (``a.pfm``, ``a.png``, COLMAP's ``a.jpg.geometric.bin``) goes with
the image named ``<stem>`` exactly (COLMAP keeps the image's extension) or ``<stem>.<image extension>``. A depth
map without its image (when the model takes images) is skipped; one that cannot be refined is reported as failed
and the others go on. The summary says what was written, skipped and failed; the exit status is 1 if any failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm.auto import tqdm

from deltaz.io.depth_io import depth_stem
from deltaz.core.errors import ConfigError, DeltaZError
from deltaz.apps.refine_file import IMAGE_SUFFIXES, OUT_SUFFIX, _same_file, refine_file

__all__ = ["pair_files", "run_folder"]


def pair_files(depth_dir: Path, image_dir: Path | None) -> list[tuple[Path, Path | None, str | None]]:
    """``(depth file, its image or None, why no image or None)`` for each depth map in ``depth_dir``, by name."""
    depths = sorted(p for p in depth_dir.iterdir() if p.is_file() and not p.name.startswith(".") and depth_stem(p))
    if image_dir is None:
        return [(p, None, None) for p in depths]
    images = [p for p in image_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    by_name = {p.name: p for p in images}
    by_stem: dict[str, list[Path]] = {}
    for p in images:
        by_stem.setdefault(p.stem, []).append(p)
    pairs = []
    for depth in depths:
        stem = depth_stem(depth)
        candidates = [by_name[stem]] if stem in by_name else sorted(by_stem.get(stem, []))
        if len(candidates) == 1:
            pairs.append((depth, candidates[0], None))
        elif candidates:
            pairs.append((depth, None, f"several images named {stem}.*: {', '.join(p.name for p in candidates)}"))
        else:
            pairs.append((depth, None, f"no image named {stem} or {stem}.* in {image_dir}"))
    return pairs


def _out_name(depth: Path, out_format: str | None) -> str:
    return depth.name if out_format is None else depth_stem(depth) + OUT_SUFFIX[out_format]


def run_folder(args: argparse.Namespace, model) -> int:
    """Refine every depth map of ``--depth``; print the summary; 1 if any failed, else 0."""
    depth_dir, out_dir = Path(args.depth), Path(args.out)
    image_dir = None if args.image is None else Path(args.image)
    if getattr(args, "right_image", None) is not None:
        raise ConfigError("--right-image: single-file mode only; refine a folder's stereo pairs one file at a time")
    if image_dir is not None and not image_dir.is_dir():
        raise ConfigError(f"--image: {image_dir} is not a folder; with a --depth folder give an image folder")
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out: {out_dir} is a file; with a --depth folder give an output folder")
    if _same_file(depth_dir, out_dir) and args.out_format is None and not args.overwrite:
        raise ConfigError(f"--out: {out_dir} is the input folder (outputs would replace the inputs); "
                          "choose another folder or pass --overwrite")
    needs_image = getattr(model, "in_channels", 1) == 4
    if needs_image and image_dir is None:
        raise ConfigError("--image: this checkpoint's model takes RGB images; pass the folder of images")
    pairs = pair_files(depth_dir, image_dir)
    if not pairs:
        raise ConfigError(f"--depth: no depth maps (.pfm .npy .png .tif .tiff .bin) in {depth_dir}")
    preview_dir = None if args.preview is None else Path(args.preview)
    written, skipped, failed = [], [], []
    bar = tqdm(pairs, desc="refine", unit="map")
    for depth, image, why in bar:
        if image is None and needs_image:
            skipped.append((depth, why))
            continue
        out = out_dir / _out_name(depth, args.out_format)
        preview = None if preview_dir is None else preview_dir / f"{depth_stem(depth)}.png"
        try:
            written.append(refine_file(args, depth, image, out, preview, _note))
        except DeltaZError as error:
            failed.append((depth, " ".join(str(error).split())))
        except Exception as error:  # one bad file must not stop the folder
            failed.append((depth, f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"))
    bar.close()
    _summary(out_dir, written, skipped, failed)
    return 1 if failed else 0


def _note(text: str) -> None:
    tqdm.write(f"deltaz refine: {text}", file=sys.stderr)


def _summary(out_dir: Path, written, skipped, failed) -> None:
    print(f"refined {len(written)}, skipped {len(skipped)}, failed {len(failed)} -> {out_dir}")
    for depth, why in skipped:
        print(f"  skipped {depth.name}: {why}")
    for depth, why in failed:
        print(f"  failed  {depth.name}: {why}")
        print(f"deltaz refine: failed {depth}: {why}", file=sys.stderr)
