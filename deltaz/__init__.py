"""DeltaZ: refine depth maps with a learned correction, ``depth_refined = depth_init + delta_z``.

Conventions (units, cameras, layouts) are those of ``DESIGN.md``: millimetres, z-depth,
world-to-camera extrinsics, pixel (0, 0) at the centre of the top-left pixel.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "refine_depth"]


def __getattr__(name: str):
    """``deltaz.refine_depth`` (see :mod:`deltaz.engine.refine`), imported on first use so ``import deltaz`` stays light."""
    if name == "refine_depth":
        from deltaz.engine.refine import refine_depth  # lazy: `import deltaz` must not pull in torch and the model

        return refine_depth
    raise AttributeError(f"module 'deltaz' has no attribute {name!r}")
