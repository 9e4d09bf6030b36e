"""Trained checkpoints in every CPU deployment format: precision, size, mAP (val.py) against the static ONNX, latency.

    python scripts/measure_deploy.py --weights runs/demo/exp1/train/weights/best.pt --img 160

See ``extensions/deploy/measure.py`` (``--help``) for what it runs and how it compares.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / 'yolov5')]

from extensions.deploy.measure import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
