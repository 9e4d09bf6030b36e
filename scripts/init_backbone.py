#!/usr/bin/env python3
"""Start checkpoint for a pretrained-backbone YAML from a timm weights file (offline; docs/pretrained.md).

    python scripts/init_backbone.py --cfg models_yaml/yolov5m-res2net50d.yaml --weights res2net50d.safetensors \\
        --out start.pt [--data data.yaml | --nc 3]
    python yolov5/train.py --weights start.pt --cfg models_yaml/yolov5m-res2net50d.yaml --data data.yaml

The logic is extensions/pretrained.py; exit status 2 (and nothing written) when the file does not fit the YAML.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `extensions`

from extensions.pretrained import main  # the package puts yolov5/ on sys.path

if __name__ == '__main__':
    sys.exit(main())
