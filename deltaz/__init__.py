"""DeltaZ: refine depth maps with a learned correction, ``depth_refined = depth_init + delta_z``.

Conventions (units, cameras, layouts) are those of ``DESIGN.md``: millimetres, z-depth,
world-to-camera extrinsics, pixel (0, 0) at the centre of the top-left pixel.
"""

__version__ = "0.1.0"
