"""Shared test setup: the repository paths, and ../shared data.

The import paths (the repository root, yolov5/, tests/ and scripts/) are set once, by ``pythonpath`` in
pytest.ini; a subprocess that needs them gets them through PYTHONPATH.
"""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / 'yolov5'
SHARED = Path(os.environ.get('SHARED_DIR', ROOT.parent / 'shared'))
SHARED_DATA = SHARED / 'data'


@pytest.fixture(scope='session')
def shared_data():
    """../shared/data (coco128, a real video); tests that need it skip cleanly without it."""
    if not (SHARED_DATA / 'coco128').is_dir():
        pytest.skip(f'real data not available at {SHARED_DATA} (only on the project machines)')
    return SHARED_DATA


@pytest.fixture(scope='module')
def one_thread():
    """Tiny tensors on a shared 2-core machine: one thread is faster (two often stall for a scheduler tick);
    the previous count is restored afterwards. Use with ``pytestmark = pytest.mark.usefixtures('one_thread')``."""
    import torch  # noqa: PLC0415  (only the tests using this fixture need torch)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
