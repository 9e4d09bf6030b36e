"""Puts this checkout's root first on ``sys.path``, so that a script run by path imports this checkout's
``extensions`` (Python only adds the script's own directory). Importing ``extensions`` then adds ``yolov5/``
for the base's ``models``/``utils`` (``extensions/_base.py``). ``scripts/`` goes on too, for the scripts'
shared helpers (as pytest.ini's ``pythonpath`` does for the tests).

Every script starts with ``import _bootstrap``; ``scripts/dev/_bootstrap.py`` is a link to this file. Standard
library only: ``scripts/setup.py`` runs it before anything is installed.
"""

import sys
from pathlib import Path

# the directory holding extensions/: found from this file's real path (also right for a copy in scripts/dev/)
ROOT = next(p for p in Path(__file__).resolve().parents if (p / 'extensions' / '__init__.py').is_file())
for _p in (str(ROOT / 'scripts'), str(ROOT)):  # ends as [ROOT, ROOT/scripts, ...]
    if _p in sys.path:
        sys.path.remove(_p)
    sys.path.insert(0, _p)
