"""The one place a script gets its import paths: this checkout's root first on ``sys.path`` (Python only adds the
script's own directory), then ``scripts/`` for the scripts' shared modules (as pytest.ini's ``pythonpath`` does for
the tests), then ``import extensions``, whose ``_base`` puts ``yolov5/`` on for the base's ``models``/``utils``.

Every script starts with ``import _bootstrap`` (ruff.toml gives it an import section of its own, before the
others); ``scripts/dev/_bootstrap.py`` is a link to this file. Standard library only: ``scripts/setup.py`` runs
it before anything is installed.
"""

import importlib
import sys
from pathlib import Path

# the directory holding extensions/: found from this file's real path (also right for a copy in scripts/dev/)
ROOT = next(p for p in Path(__file__).resolve().parents if (p / 'extensions' / '__init__.py').is_file())
for _p in (str(ROOT / 'scripts'), str(ROOT)):  # ends as [ROOT, ROOT/scripts, ...]
    if _p in sys.path:
        sys.path.remove(_p)
    sys.path.insert(0, _p)
importlib.import_module('extensions')  # this checkout's; its _base puts yolov5/ on sys.path (standard library only)
