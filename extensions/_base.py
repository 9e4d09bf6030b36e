"""Makes the YOLOv5 base (``yolov5/``) importable as ``models`` / ``utils`` when this package is imported first.

Imported for that side effect by ``extensions/__init__.py``; standard library only, since the patched base
imports this package (``utils/__init__.py`` -> ``extensions.compat``) before anything else.
"""

import sys
from pathlib import Path

BASE = Path(__file__).resolve().parents[1] / 'yolov5'
if str(BASE) not in sys.path and 'models' not in sys.modules:
    sys.path.append(str(BASE))  # `from models.common import Conv` works when extensions is imported first
