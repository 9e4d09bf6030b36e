"""YOLOv5 extension blocks: Res2Net, ResNeSt and SE-ResNet-D (ResNet-RS) families for the v6.0/v7.0 models.

Each module listed in ``FAMILIES`` registers its blocks with :mod:`extensions.registry` (``@register``),
which YOLOv5's ``parse_model`` consults (patches/0001). To add a family, write ``extensions/<name>.py`` with
``@register``-decorated blocks and append ``'<name>'`` to ``FAMILIES``; the patch never changes.

This package is imported by the patched base very early (``utils/general.py`` imports
``extensions.compat``), so importing it must stay light: the families are imported on the first registry
lookup, when YOLOv5's ``models.common`` (whose ``Conv`` the blocks use) is complete.
"""

import sys
from pathlib import Path

FAMILIES = ('blocks',)  # modules of this package that register blocks

_BASE = Path(__file__).resolve().parents[1] / 'yolov5'
if str(_BASE) not in sys.path and 'models' not in sys.modules:
    sys.path.append(str(_BASE))  # `from models.common import Conv` works when extensions is imported first
