"""What YOLOv5's TFLite export and inference call (patches/0014): the float32 model, the metadata, the interpreter.

* :func:`tflite_converter`: the TFLite converter of the frozen SavedModel that ``export_saved_model`` has just
  written, instead of upstream's ``from_keras_model``, which traces the Keras model again (Keras 3 exports it to a
  temporary SavedModel first): the same graph, converted about ten times faster (measured 6 s instead of 60 s
  for a yolov5n).
* :func:`tflite_fp32`: upstream ``export_tflite`` writes ``<name>-fp16.tflite`` only (float16 weights, computed in
  float32 by CPU kernels); this writes ``<name>-fp32.tflite`` beside it, the same graph with float32 weights, for
  runtimes and accelerators that want float32 and for exact parity checks.
* :func:`tflite_metadata`: upstream stores the stride and class names in a ``.tflite`` only through the
  ``tflite_support`` package, which does not install beside today's stack; without them detect.py labels boxes
  ``class0..`` and val.py cannot name the classes. The same layout ``DetectMultiBackend`` reads (a zip archive
  appended to the flatbuffer, holding one text file with the dict) is written here with the standard library.
* :func:`check_edgetpu_compiler`: upstream ``export_edgetpu`` runs ``curl`` and ``sudo apt-get install`` (Google's
  Coral apt repository) when ``edgetpu_compiler`` is missing; this project never installs at run time, so the
  export stops first with what to install.
* :func:`tflite_interpreter`: the interpreter ``DetectMultiBackend`` runs a ``.tflite`` with: ``tflite_runtime``,
  else ``ai_edge_litert`` (LiteRT, the successor of both), else ``tf.lite.Interpreter`` without its deprecation
  warning (TF 2.21 still ships it but warns on every load).

TensorFlow is imported inside the functions that need it: importing this module stays light.
"""

from __future__ import annotations

import io
import logging
import shutil
import warnings
import zipfile
from pathlib import Path

__all__ = ['fp32_file', 'saved_model_dir', 'tflite_converter', 'tflite_fp32', 'tflite_metadata',
           'check_edgetpu_compiler', 'tflite_interpreter']

LOGGER = logging.getLogger('yolov5')


def fp32_file(weights) -> Path:
    """``<dir>/<name>-fp32.tflite`` for the weights ``<dir>/<name>.pt``, named as upstream names ``-fp16.tflite``."""
    return Path(str(weights).replace('.pt', '-fp32.tflite'))


def saved_model_dir(weights) -> Path:
    """``<dir>/<name>_saved_model``: where ``export_saved_model`` writes the SavedModel of ``<dir>/<name>.pt``."""
    return Path(str(weights).replace('.pt', '_saved_model'))


class _NoCustomGradientWarning(logging.Filter):
    def filter(self, record):
        return 'with ops with unsaved custom gradients' not in record.getMessage()


def _quiet_custom_gradients() -> None:
    """Loading the SavedModel logs "Importing a function ... with ops with unsaved custom gradients. Will likely
    fail if a gradient is requested" (SiLU has a custom gradient; upstream saves without it) twice per
    conversion. A conversion never asks for a gradient: that one message is dropped."""
    absl = logging.getLogger('absl')
    if not any(isinstance(f, _NoCustomGradientWarning) for f in absl.filters):
        absl.addFilter(_NoCustomGradientWarning())


def tflite_converter(keras_model, weights):
    """A ``TFLiteConverter`` for the model exported from ``weights``: from its frozen SavedModel when
    ``export_saved_model`` wrote one (it always does before ``export_tflite``, and it holds the same function as
    ``keras_model``), else from ``keras_model``."""
    import tensorflow as tf

    if keras_model is None:
        raise ValueError('no TensorFlow model to convert: the SavedModel export failed (its error is above)')
    d = saved_model_dir(weights)
    if (d / 'saved_model.pb').is_file() and not (d / 'keras_metadata.pb').is_file():  # --keras saves another form
        _quiet_custom_gradients()
        return tf.lite.TFLiteConverter.from_saved_model(str(d))
    return tf.lite.TFLiteConverter.from_keras_model(keras_model)


def tflite_fp32(keras_model, weights, select_tf_ops: bool = False) -> Path:
    """Convert the exported model (:func:`tflite_converter`) to a float32 TFLite model (no quantisation) and write
    it to :func:`fp32_file`. ``select_tf_ops`` adds the TF ops the ``--nms`` head needs, as upstream does for
    float16."""
    import tensorflow as tf

    converter = tflite_converter(keras_model, weights)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if select_tf_ops:
        converter.target_spec.supported_ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    f = fp32_file(weights)
    f.write_bytes(converter.convert())
    LOGGER.info(f'TensorFlow Lite: float32 model saved as {f} ({f.stat().st_size / 1e6:.1f} MB)')
    return f


def _write_metadata(f: Path, metadata: dict) -> None:
    if zipfile.is_zipfile(f):  # already has metadata (tflite_support, or an earlier call)
        return
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as z:
        z.writestr('meta.txt', str(metadata))  # DetectMultiBackend: ast.literal_eval of the archive's first file
    with open(f, 'ab') as fh:
        fh.write(buf.getvalue())


def tflite_metadata(metadata: dict, tflite, weights) -> None:
    """Store ``metadata`` (``{'stride': int, 'names': {i: name}}``) in the exported ``tflite`` and, when that is
    the float16 model, in the float32 model exported beside it from ``weights``. A file that already carries
    metadata is left as it is; ``tflite=None`` (a failed export) does nothing."""
    if not tflite or not Path(tflite).is_file():
        return
    files = [Path(tflite)]
    if str(tflite).endswith('-fp16.tflite') and fp32_file(weights).is_file():
        files.append(fp32_file(weights))
    for f in files:
        _write_metadata(f, metadata)


class EdgeTPUCompilerMissing(RuntimeError):
    """``export.py --include edgetpu`` without ``edgetpu_compiler`` on PATH."""


def check_edgetpu_compiler() -> str:
    """The path of ``edgetpu_compiler``; :class:`EdgeTPUCompilerMissing` saying how to install it otherwise."""
    found = shutil.which('edgetpu_compiler')
    if found is None:
        raise EdgeTPUCompilerMissing(
            'the Edge TPU export needs edgetpu_compiler on PATH (Linux x86_64; Debian package edgetpu-compiler from '
            "Google's Coral apt repository, see https://coral.ai/docs/edgetpu/compiler/). This build never installs "
            'at run time: install it, or export --include tflite --int8 here and compile the -int8.tflite on a '
            'machine that has the compiler (edgetpu_compiler -s <name>-int8.tflite)')
    return found


def tflite_interpreter():
    """``(Interpreter, load_delegate)`` of the first TFLite runtime installed: ``tflite_runtime``,
    ``ai_edge_litert``, TensorFlow's ``tf.lite``. Raises ``ModuleNotFoundError`` saying what to install."""
    try:
        from tflite_runtime.interpreter import Interpreter, load_delegate
        return Interpreter, load_delegate
    except ImportError:
        pass
    try:
        from ai_edge_litert.interpreter import Interpreter, load_delegate
        return Interpreter, load_delegate
    except ImportError:
        pass
    try:
        import tensorflow as tf
    except ImportError as e:
        raise ModuleNotFoundError('running a .tflite model needs a TFLite runtime: pip install ai-edge-litert '
                                  '(or tensorflow-cpu, see requirements.txt)', name='tensorflow') from e

    class Interpreter(tf.lite.Interpreter):  # same class, without the deprecation warning on every model load
        def __init__(self, *args, **kwargs):
            with warnings.catch_warnings():
                warnings.filterwarnings('ignore', r'.*tf\.lite\.Interpreter is deprecated', UserWarning)
                super().__init__(*args, **kwargs)

    return Interpreter, tf.lite.experimental.load_delegate
