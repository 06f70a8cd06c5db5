"""Stable import path ``deltaz.baselines`` for the classical baselines, which live in :mod:`deltaz.ops.baselines`.

Other programs import ``deltaz.baselines``; this module *is* ``deltaz.ops.baselines`` (the same module object),
so attributes, monkeypatching and ``isinstance`` checks behave identically. Code inside the package imports
``deltaz.ops.baselines`` directly (tests/test_layers.py checks that).
"""

import sys

from deltaz.ops import baselines as _module

sys.modules[__name__] = _module
