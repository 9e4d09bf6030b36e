"""YOLOv5 extension blocks: Res2Net, ResNeSt and SE-ResNet-D (ResNet-RS) families for the v6.0/v7.0 models.

The families are listed in :mod:`extensions.families` (one row each); each family's module registers its blocks
with :mod:`extensions.registry` (``@register``), which YOLOv5's ``parse_model`` consults (patches/0001).
``extensions.blocks`` re-exports every block. Importing this package stays light (no torch): the patched base
imports it first, and the family modules are imported on the first registry lookup.
"""

from . import _base  # noqa: F401  (puts yolov5/ on sys.path)
from .families import FAMILIES, SCALES, Family  # noqa: F401
