"""Stable import path ``deltaz.corrupt`` for the initial-depth simulation, which lives in :mod:`deltaz.ops.corrupt`.

Other programs import ``deltaz.corrupt``; this module *is* ``deltaz.ops.corrupt`` (the same module object),
so attributes, monkeypatching and ``isinstance`` checks behave identically. Code inside the package imports
``deltaz.ops.corrupt`` directly (tests/test_layers.py checks that).
"""

import sys

from deltaz.ops import corrupt as _module

sys.modules[__name__] = _module
