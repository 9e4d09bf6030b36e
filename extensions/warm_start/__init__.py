"""Warm start: put a block family into a trained plain YOLOv5 without losing what it learned (docs/warm_start.md).

:mod:`.start` (:func:`warm_start`, its settings and result), :mod:`.layers` (pairing and copying), :mod:`.fit`
(fitting the swapped blocks); ``scripts/warm_start.py`` is the command line.
"""

from .layers import Pair, WarmStartError
from .start import LayerFit, WarmStartResult, WarmStartSettings, warm_start

__all__ = ['WarmStartSettings', 'LayerFit', 'WarmStartResult', 'WarmStartError', 'warm_start', 'Pair']
