"""Stable import path ``deltaz.evaluate`` for evaluation, which lives in :mod:`deltaz.engine.evaluate`.

Other programs import ``deltaz.evaluate``; this module *is* ``deltaz.engine.evaluate`` (the same module object),
so attributes, monkeypatching and ``isinstance`` checks behave identically. Code inside the package imports
``deltaz.engine.evaluate`` directly (tests/test_layers.py checks that).
"""

import sys

from deltaz.engine import evaluate as _module

sys.modules[__name__] = _module
