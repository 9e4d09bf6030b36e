"""OpenVINO export and inference for the pinned YOLOv5 base with today's ``openvino`` package (patches/0012).

Upstream a199480ba exports through ``openvino-dev`` (``openvino.tools.mo``) and infers through
``openvino.runtime``; neither exists any more. Here:

* :func:`export` converts the ONNX export with ``ov.convert_model`` and writes upstream's layout,
  ``<stem>_openvino_model/<stem>.xml/.bin`` plus ``<stem>.yaml`` (stride, names). ``--half`` stores FP16
  weights (``compress_to_fp16``) and works on a CPU: the PyTorch model and the ONNX stay FP32.
  ``--int8 --data <data.yaml>`` quantizes post-training with NNCF on images of the data's train split, fed as
  val.py feeds a static model, into ``<stem>_int8_openvino_model/`` (the FP32 export next to it is kept).
* :func:`load` compiles the model for ``DetectMultiBackend`` on the CPU in an explicit precision: f32 unless
  ``YOLOV5_OPENVINO_PRECISION`` says otherwise. OpenVINO's own default is bf16 on CPUs with bf16 instructions
  and f32 elsewhere, so the same FP32 model would give different numbers on different machines; the
  precision used is logged in one line.

Nothing is downloaded or installed: a missing ``openvino``/``nncf`` is a clear error naming the fix. Nothing is
sent either: ``import openvino`` and NNCF send usage telemetry to Google Analytics unless the user opted out,
which on an offline machine means connection attempts from every detect.py/val.py/export.py run. Importing this
module makes ``openvino_telemetry`` unimportable in the process (unless something imported it already), which
both libraries treat as "no telemetry" (their documented fallback when the package is absent).
"""

from __future__ import annotations

import importlib
import math
import os
import re
import sys
from pathlib import Path

import numpy as np

from extensions.compat import SETUP_HINT, MissingRequirementError, check_requirements

sys.modules.setdefault('openvino_telemetry', None)  # no usage telemetry from openvino/nncf (see above)

OPENVINO_REQUIREMENT = 'openvino>=2024.0'  # as in requirements.txt
NNCF_REQUIREMENT = 'nncf>=2.10'
PRECISION_ENV = 'YOLOV5_OPENVINO_PRECISION'
PRECISIONS = ('f32', 'bf16', 'f16', 'default')  # 'default': no hint, OpenVINO's choice for the CPU
DEFAULT_PRECISION = 'f32'
CALIBRATION_IMAGES = 300  # NNCF's default subset size: enough for per-tensor activation ranges of a detector
HALF_ON_CPU_FORMATS = {'openvino', 'onnx', 'coreml'}  # formats that take --half on a CPU (ONNX stays FP32)
BASE = Path(__file__).resolve().parents[2] / 'yolov5'
UPSTREAM_DEFAULT_DATA = BASE / 'data' / 'coco128.yaml'  # export.py's --data default (a dataset to download)


class OpenVINOError(RuntimeError):
    """An OpenVINO export or inference request that cannot be carried out as given."""


def _logger():
    from utils.general import LOGGER
    return LOGGER


def require(module: str, requirement: str):
    """Import ``module`` (openvino or nncf) or raise MissingRequirementError naming the fix. Never installs."""
    check_requirements(requirement)
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingRequirementError(
            f'{requirement} is required but `import {module}` fails ({type(e).__name__}: {e}). Fix: '
            f'pip install "{requirement}", or {SETUP_HINT}') from e


# --------------------------------------------------------------------------------------------------- export

def half_on_cpu(include) -> bool:
    """``export.py --half`` on a CPU: True when OpenVINO takes it (FP16 weights from the FP32 model).

    Upstream allows --half on a CPU only for CoreML, because it casts the PyTorch model to FP16. OpenVINO compresses
    the weights itself, so on a CPU the PyTorch model and the ONNX it converts stay FP32. A format that needs the
    cast (torchscript, engine, TF...) in the same command cannot get FP16 on a CPU: that is an error, not a
    silent FP32 file.
    """
    include = {x.lower() for x in include}
    if 'openvino' not in include:
        return False
    others = sorted(include - HALF_ON_CPU_FORMATS)
    if others:
        raise OpenVINOError(
            f'--half on a CPU: OpenVINO stores FP16 weights, but {", ".join(others)} would need the PyTorch model in '
            f'FP16, which upstream does only on a GPU. Export {", ".join(others)} in a separate command (with '
            f'--device 0 for FP16), or drop --half')
    if 'onnx' in include:
        _logger().info('--half on a CPU: the OpenVINO model gets FP16 weights; the ONNX export stays FP32')
    return True


def output_dir(file: Path, int8: bool = False) -> Path:
    """``<stem>_openvino_model`` (upstream's layout) or ``<stem>_int8_openvino_model`` next to the weights."""
    return Path(file).parent / f'{Path(file).stem}{"_int8" if int8 else ""}_openvino_model'


def export(model, im, file, onnx_file, metadata, half=False, int8=False, data=None, prefix='OpenVINO:') -> str:
    """Convert ``onnx_file`` (the ONNX export of ``model`` at input ``im``) and save it; return the model folder.

    Returns the folder as a string ending in a path separator, as upstream does (``export.run()`` lists it and
    prints it in its "Detect:/Validate:" hints).
    """
    file = Path(file)
    if not onnx_file or not Path(onnx_file).is_file():
        raise OpenVINOError('OpenVINO converts the ONNX export, which did not succeed in this run (see the ONNX '
                            'error above): fix that first')
    if int8 and half:
        raise OpenVINOError('--int8 and --half both given: an INT8 OpenVINO model keeps its non-quantized layers '
                            'in FP32. Pass --int8 (INT8) or --half (FP16 weights), not both')
    calibration = calibration_images(data, tuple(im.shape[2:])) if int8 else None  # bad --data fails before work
    ov = require('openvino', OPENVINO_REQUIREMENT)
    log = _logger()
    log.info(f'\n{prefix} starting export with openvino {ov.get_version().split("-")[0]}...')
    ov_model = ov.convert_model(str(onnx_file))
    if int8:
        ov_model = quantize(ov_model, calibration, detect_head_name(model), prefix)
    out = output_dir(file, int8)
    out.mkdir(parents=True, exist_ok=True)
    ov.save_model(ov_model, str(out / f'{file.stem}.xml'), compress_to_fp16=bool(half))  # FP32 unless --half
    from utils.general import yaml_save
    yaml_save(out / f'{file.stem}.yaml', metadata)  # stride and names, read back by DetectMultiBackend
    weights = 'INT8 (NNCF)' if int8 else 'FP16' if half else 'FP32'
    log.info(f'{prefix} {weights} weights, input {tuple(im.shape)}')
    return f'{out}{os.sep}'


# ----------------------------------------------------------------------------------------------------- INT8

def calibration_images(data, shape) -> list[Path]:
    """The train-split images NNCF calibrates on: up to CALIBRATION_IMAGES of them, spread evenly over the split.

    ``data`` is export.py's --data. Its default (upstream's coco128.yaml, a dataset to download) is not the
    model's data, so an --int8 export without --data is an error, as is a yaml without a train split.
    """
    if data is None or (not isinstance(data, str) and Path(data).resolve() == UPSTREAM_DEFAULT_DATA.resolve()):
        raise OpenVINOError('--int8 for OpenVINO calibrates on the training images of the model\'s data: pass '
                            '--data <data.yaml> (the yaml the model was trained with)')
    from utils.dataloaders import IMG_FORMATS
    from utils.general import check_dataset, check_yaml, yaml_load
    yaml_file = check_yaml(str(data))
    if not yaml_load(yaml_file).get('train'):
        raise OpenVINOError(f'--data {data} has no train: split, which --int8 calibrates on: add '
                            f'train: <images dir, list file or list of them> to it, or pass another data yaml')
    train = check_dataset(yaml_file)['train']  # resolved as train.py/val.py resolve it; missing files: clear error
    files = []
    for p in train if isinstance(train, list) else [train]:
        p = Path(p)
        if p.is_dir():
            files += [f for f in p.rglob('*.*') if f.is_file()]
        elif p.is_file():  # a list file: one image path a line, './' relative to the list file
            files += [Path(x.replace('./', str(p.parent) + os.sep, 1) if x.startswith('./') else x)
                      for x in p.read_text().split()]
        else:
            raise OpenVINOError(f'--data {data}: train split {p} does not exist')
    files = sorted({f for f in files if f.suffix[1:].lower() in IMG_FORMATS})
    if not files:
        raise OpenVINOError(f'--data {data}: no images in its train split {train}, which --int8 calibrates on')
    n = min(CALIBRATION_IMAGES, len(files))
    picked = [files[i] for i in np.unique(np.linspace(0, len(files) - 1, n).round().astype(int))]
    _logger().info(f'OpenVINO: INT8 calibration on {len(picked)} of {len(files)} train images of {data} '
                   f'at {shape[0]}x{shape[1]}')
    return [(f, shape) for f in picked]


def letterbox_as_val(path, shape) -> np.ndarray:
    """One image as val.py feeds a static exported model: (1, 3, h, w) float32 RGB in [0, 1].

    val.py (batch 1, square, no rect) resizes the long side to the image size (INTER_AREA when shrinking), then
    pads with 114 to the model's input shape without scaling up (LoadImagesAndLabels.load_image + letterbox).
    """
    import cv2
    from utils.augmentations import letterbox
    im = cv2.imread(str(path))  # BGR
    if im is None:
        raise OpenVINOError(f'INT8 calibration: cannot read image {path}')
    h0, w0 = im.shape[:2]
    r = min(shape[0] / h0, shape[1] / w0)
    if r != 1:
        interp = cv2.INTER_LINEAR if r > 1 else cv2.INTER_AREA
        im = cv2.resize(im, (min(math.ceil(w0 * r), shape[1]), min(math.ceil(h0 * r), shape[0])), interpolation=interp)
    im = letterbox(im, shape, auto=False, scaleup=False)[0]
    im = im.transpose((2, 0, 1))[::-1]  # HWC BGR -> CHW RGB
    return (np.ascontiguousarray(im, dtype=np.float32) / 255.0)[None]


def detect_head_name(model) -> str:
    """The Detect head's module path in the ONNX/OpenVINO node names, e.g. 'model.24' (the last layer)."""
    head = model.model[-1]
    return f'model.{getattr(head, "i", len(model.model) - 1)}'


def ignored_scope(nncf, ov_model, head: str):
    """Keep the Detect head's box decoding in float: everything under ``/<head>/`` except its output convolutions
    (``m.0``, ``m.1``, ... stay INT8), and the final concatenation of the three scales.

    The decoding (sigmoid, ``(xy * 2 + grid) * stride``, ``(wh * 2) ** 2 * anchor_grid``) turns [0, 1] scores into
    pixel coordinates up to the image size; one INT8 range across both would cost whole pixels of box precision.
    ``validate`` (NNCF's default) makes a pattern that matches nothing an error instead of a silent INT8 head.
    """
    outputs = [r.input_value(0).get_node().get_friendly_name() for r in ov_model.get_results()]
    return nncf.IgnoredScope(patterns=[rf'/{re.escape(head)}/(?!m\.\d+/)'], names=outputs)


def quantize(ov_model, calibration, head: str, prefix='OpenVINO:'):
    """Post-training INT8 with NNCF: MIXED preset (symmetric weights, asymmetric activations, which suits the
    non-negative-leaning SiLU outputs), calibrated on ``calibration`` [(image path, (h, w))]."""
    nncf = require('nncf', NNCF_REQUIREMENT)
    _logger().info(f'{prefix} quantizing to INT8 with nncf {nncf.__version__} (preset MIXED, head {head} '
                   f'decoding kept in float)...')
    dataset = nncf.Dataset(calibration, lambda item: letterbox_as_val(*item))
    return nncf.quantize(ov_model, dataset, preset=nncf.QuantizationPreset.MIXED, subset_size=len(calibration),
                         ignored_scope=ignored_scope(nncf, ov_model, head))


# ------------------------------------------------------------------------------------------------ inference

def precision_config() -> tuple[str, dict]:
    """(requested precision, compile config) from YOLOV5_OPENVINO_PRECISION (default f32)."""
    raw = os.environ.get(PRECISION_ENV, '')
    value = raw.strip().lower() or DEFAULT_PRECISION
    if value not in PRECISIONS:
        raise OpenVINOError(
            f'{PRECISION_ENV}={raw!r} is not a precision this build knows: use one of {", ".join(PRECISIONS)} '
            f'(f32 is the default; "default" leaves the choice to OpenVINO: bf16 on CPUs with bf16 instructions), '
            f'or unset it')
    return value, ({} if value == 'default' else {'INFERENCE_PRECISION_HINT': value})


def load(w, device='CPU'):
    """Read and compile an exported OpenVINO model for DetectMultiBackend.

    ``w``: the ``*_openvino_model`` folder or its .xml. Returns (compiled model, static batch size or None, the
    .xml path). Logs one line with the precision the CPU runs it in.
    """
    requested, config = precision_config()  # a bad value fails before anything is loaded
    ov = require('openvino', OPENVINO_REQUIREMENT)
    w = Path(w)
    xml = w if w.is_file() else next(iter(sorted(w.glob('*.xml'))), None)
    if xml is None:
        raise OpenVINOError(f'{w} holds no OpenVINO model (*.xml): export one with '
                            f'`python export.py --weights <model.pt> --include openvino`')
    core = ov.Core()
    network = core.read_model(model=str(xml), weights=str(xml.with_suffix('.bin')))
    if network.get_parameters()[0].get_layout().empty:
        network.get_parameters()[0].set_layout(ov.Layout('NCHW'))
    batch_dim = ov.get_batch(network)
    batch_size = batch_dim.get_length() if batch_dim.is_static else None
    compiled = core.compile_model(network, device, config)
    actual = compiled.get_property('INFERENCE_PRECISION_HINT').get_type_name()
    _logger().info(precision_line(ov.get_version(), device, requested, actual, network,
                                  core.get_property(device, 'OPTIMIZATION_CAPABILITIES')))
    return compiled, batch_size, xml


def precision_line(version, device, requested, actual, network, capabilities) -> str:
    """The one log line saying in which precision an OpenVINO model runs, and why."""
    why = (f'{PRECISION_ENV}={requested}' if os.environ.get(PRECISION_ENV, '').strip() else
           f'{PRECISION_ENV} unset: {DEFAULT_PRECISION}')
    if requested not in ('default', actual):
        why += f'; {requested} is not available on this {device} (capabilities {", ".join(capabilities)})'
    ops = {op.get_type_name() for op in network.get_ops()}
    kind = ', INT8-quantized model (its quantized layers run in int8)' if 'FakeQuantize' in ops else ''
    return f'OpenVINO {version.split("-")[0]}: {device} inference precision {actual} ({why}){kind}'
