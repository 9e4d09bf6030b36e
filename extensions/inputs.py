"""Images, videos and labels from users: every bad file is named with what is wrong, and good ones still get used.

The base calls these (patches/0016):

* ``detect.py``'s loader (``LoadImages``) reads images with :func:`read_image` and opens videos with
  :func:`open_video`; a file that cannot be read is named in one warning line and skipped
  (:func:`skip`), and :func:`check_skipped` ends the run with exit status 1 naming every skipped file, after
  every good one was processed.
* the label reader (``verify_image_label``) checks each label file with :func:`check_label_rows` (column count,
  numbers, NaN/inf, with the line named), and ``train.py``/``val.py`` check the class ids of the train and val
  labels with :func:`check_label_classes`.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

__all__ = ['UnreadableInput', 'LabelClassError', 'read_image', 'open_video', 'skip', 'check_skipped',
           'check_label_rows', 'check_label_classes']

LOGGER = logging.getLogger('yolov5')  # the base's logger (utils.general.LOGGING_NAME)
BOX_COLUMNS = 'class x_center y_center width height'


class UnreadableInput(ValueError):
    """An image or video file that cannot be read; ``str(e)`` names the file and says why."""

    def __init__(self, path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f'{path}: {reason}')


class LabelClassError(ValueError):
    """A label file with a class id outside ``0..nc-1``."""


def read_image(path):
    """The image at ``path`` as OpenCV reads it (BGR); :class:`UnreadableInput` saying 'missing' or 'not an image'."""
    import cv2

    p = Path(path)
    if not p.is_file():
        raise UnreadableInput(path, 'missing (no such file)')
    if p.stat().st_size == 0:
        raise UnreadableInput(path, 'not an image (empty file)')
    try:
        im = cv2.imread(str(p))
    except cv2.error:
        im = None
    if im is None:
        raise UnreadableInput(path, 'not an image (OpenCV cannot decode it: corrupt, or not an image format)')
    return im


class ClosedCapture:
    """Stands in for a video OpenCV cannot open: no frames, so the loader moves on to the next file."""

    def grab(self):
        return False

    def read(self):
        return False, None

    retrieve = read

    def release(self):
        pass

    def isOpened(self):
        return False

    def get(self, prop):
        return 0


def open_video(loader, path):
    """``cv2.VideoCapture(path)``; a video that cannot be opened is skipped (:func:`skip`): no frames from it."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    if cap.isOpened():
        return cap
    reason = 'missing (no such file)' if not Path(path).is_file() else \
        'not a video OpenCV can open (truncated, corrupt or another format)'
    skip(loader, UnreadableInput(path, reason))
    return ClosedCapture()


def skip(loader, e: UnreadableInput) -> None:
    """Record a skipped file on ``loader`` (its ``skipped`` list) and name it in one warning line."""
    loader.__dict__.setdefault('skipped', []).append(e)
    LOGGER.warning(f'WARNING ⚠️ skipped {e.path}: {e.reason}')


def check_skipped(loader) -> None:
    """After every good file was processed: exit with status 1 naming the files that were skipped, if any."""
    skipped = getattr(loader, 'skipped', [])
    if skipped:
        total = getattr(loader, 'nf', len(skipped))
        names = '; '.join(f'{e.path} ({e.reason})' for e in skipped)
        raise SystemExit(f'ERROR: {len(skipped)} of {total} input files could not be read and were skipped: {names}')


# ----------------------------------------------------------------------------------------------------- labels
def check_label_rows(rows: list, label_file) -> None:
    """Raise ValueError naming ``label_file``, the line and what is wrong: a value that is not a number, NaN or
    infinity, or a box line without exactly 5 columns (``rows`` are the split non-empty lines)."""
    segments = any(len(r) > 6 for r in rows)  # polygon labels (class x1 y1 x2 y2 ...), as the base reads them
    for k, row in enumerate(rows, 1):
        for v in row:
            try:
                x = float(v)
            except ValueError:
                raise ValueError(f'label {label_file} line {k}: {v!r} is not a number') from None
            if not math.isfinite(x):
                raise ValueError(f'label {label_file} line {k}: {v} value (every value must be a finite number)')
        if not segments and len(row) != 5:
            raise ValueError(f'label {label_file} line {k} has {len(row)} columns, expected 5 ({BOX_COLUMNS})')
        if segments and (len(row) < 7 or len(row) % 2 == 0):
            raise ValueError(f'label {label_file} line {k} has {len(row)} columns: a polygon line is class x1 y1 '
                             f'x2 y2 x3 y3 ... (an odd number of at least 7)')


def check_label_classes(dataset, nc: int, data='') -> None:
    """Raise :class:`LabelClassError` naming the first label file of ``dataset`` (a ``LoadImagesAndLabels``) whose
    class id is not a whole number in ``0..nc-1``."""
    for labels, f in zip(dataset.labels, dataset.label_files):
        if len(labels):
            cls = labels[:, 0]
            bad = cls[(cls >= nc) | (cls < 0) | (cls != cls.round())]
            if len(bad):
                raise LabelClassError(
                    f'label {f} has class {bad[0]:g}, but {data or "the data yaml"} defines nc={nc} classes '
                    f'(0-{nc - 1}). Fix: correct the label, or the nc/names of the data yaml')
