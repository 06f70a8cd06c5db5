"""Stable import path ``deltaz.config`` for the training settings, which lives in :mod:`deltaz.engine.config`.

Other programs import ``deltaz.config``; this module *is* ``deltaz.engine.config`` (the same module object),
so attributes, monkeypatching and ``isinstance`` checks behave identically. Code inside the package imports
``deltaz.engine.config`` directly (tests/test_layers.py checks that).
"""

import sys

from deltaz.engine import config as _module

sys.modules[__name__] = _module
