"""Deployment of YOLOv5 models on today's runtimes, called by the patched base.

* :mod:`extensions.deploy.openvino`: ``export.py --include openvino`` (FP32, ``--half`` FP16 weights, ``--int8``
  post-training quantization with NNCF) and ``DetectMultiBackend``'s OpenVINO inference with an explicit,
  logged precision (patches/0012).
* :mod:`extensions.deploy.failures`: ``export.py`` fails loudly when a requested format did not export
  (patches/0013).
* :mod:`extensions.deploy.measure` (``scripts/measure_deploy.py``): trained checkpoints in every CPU format, with
  YOLOv5's own export.py and val.py: precision, size, mAP against the static ONNX, latency.

Nothing here is imported by the base at start-up except :mod:`extensions.deploy.failures` (standard library
only); OpenVINO and NNCF are imported only when a command uses them.
"""
