"""The benchmark behind ``scripts/benchmark.py``: plain YOLOv5 against each block family at the same scale.

One module per mechanism; ``scripts/benchmark.py`` parses the options and runs them in order:

* :mod:`.machine`: the CPU, /proc readers, load and the CPU use of other processes, resident-set size;
* :mod:`.models`: the models of a run (:class:`~.models.Entry`, one per YAML, grouped by scale with the plain
  YOLOv5 of that scale); :mod:`.build`: building and fusing them quietly;
* :mod:`.stats`: medians, quantiles and ratio statistics of timed pairs; mean, sd and Welch/paired
  confidence intervals over seeds, and the verdict each interval supports;
* :mod:`.cost`: params and GFLOPs;
* :mod:`.timing`: timed pairs alternating plain and extension, PyTorch and onnxruntime latency;
* :mod:`.training`: training throughput and peak training memory;
* :mod:`.accuracy`: training runs with ``yolov5/train.py`` over seeds, from scratch and fine-tuned from a
  plain checkpoint, and their mAP (fail closed: a missing seed fails the run);
* :mod:`.profiling`: per-layer times and dominant ops of the blocks that miss a target;
* :mod:`.targets`: the project's targets per family, met or missed;
* :mod:`.report` and :mod:`.plots`: ``benchmark.md``, ``benchmark.json``, the PNGs and the printed summary.

The package only holds modules (nothing is imported here), so ``python -m extensions.benchmark.training``,
the fresh process that measures training memory, imports nothing twice.
"""
