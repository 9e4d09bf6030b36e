"""The benchmark behind ``scripts/benchmark.py``: plain YOLOv5 against each block family at the same scale.

Every model is compared with plain YOLOv5 of its scale (yolov5/models/yolov5<scale>.yaml, the scale being the
letter in the file name: yolov5s-res2.yaml -> yolov5s.yaml), measured in the same run:

* params and GFLOPs at 640 of the fused model (YOLOv5's own count, thop, taken at 640 itself);
* latency at batch 1 in each runtime (default: all available): the fused eval PyTorch model under
  torch.inference_mode (torch), the ONNX export of it (as yolov5/export.py does) in onnxruntime (onnx) and in
  OpenVINO on the CPU: f32 (openvino-f32), the runtime's default precision (openvino: bf16 on CPUs with bf16
  instructions; the precision it ran in is recorded) and NNCF post-training INT8 (openvino-int8, calibrated on
  the built-in shapes data), with a fixed thread count. One runtime at a time, each extension model is timed in
  pairs alternating with its plain model (plain, ext, plain, ext, ...); its ratio is the median of the per-pair
  ratios, with their interquartile range as the spread; P50/P95/P99 of each model's timed runs. Achieved
  GFLOP/s = GFLOPs / latency; the fastest runtime per model; INT8's speed-up over the same model in f32;
* training throughput (images/s of forward + ComputeLoss + backward + clip + SGD step + EMA, as train.py does,
  on a fixed synthetic batch), alternated with the plain model in the same way; peak memory of training
  (CPU: growth of the peak resident set over two iterations, in a fresh process; GPU: max_memory_allocated);
* with the accuracy part: ACCURACY OVER SEEDS, every model trained by yolov5/train.py over several seeds
  (default 3; only --seed differs between the runs of a model) with the same epochs, optimizer and
  hyperparameters (the demo's recipe: AdamW with scripts/hyps/hyp.short-cpu.yaml, batch 16), by default on
  the demo's shapes scene at img 160 and at the smallest scale of the run, in each case of :mod:`.cases`: from
  scratch, and fine-tuned from a plain YOLOv5 checkpoint trained (once, by the benchmark, cached) on the
  standard shapes scene, as users start from yolov5s.pt. Per model: mean, sd and per-seed mAP of the final
  epoch; per family: the difference to plain with Welch's 95% interval and a verdict ("better by", "worse by",
  "no difference detectable at this budget"). A failed or missing seed fails the benchmark (naming model, case
  and seed; the finished runs stay, to be reused). A short schedule says which model learns faster in a few CPU
  epochs; it is not a claim about COCO;
* with the blocks part (``--only blocks``): each block and backbone stage with a timm counterpart against
  timm's, same weights, inference and training passes in alternating pairs (:mod:`.reference`);
* with the GPU part (``--only gpu --device 0``): each model against its plain reference (and timm's classifiers
  against theirs) at batch 1 eager and as a CUDA graph, batch 32 inference and the AMP training step with
  train.py's determinism and with cudnn.benchmark, in alternating pairs (:mod:`.gpu`, docs/gpu/README.md).

Writes <out>/benchmark.md (tables, machine, date, command, targets met/missed, profile of missed targets),
<out>/benchmark.json (the run's :class:`~.results.Report`: every number) and PNG plots. Timing runs are only
meaningful on an otherwise idle machine: the load average at the start and the end goes into the report.

One module per mechanism; :mod:`.parts` holds one entry point per part (``run_accuracy``, ``run_speed``,
``run_blocks``, ``run_gpu``), each taking the models (the blocks and GPU parts: none) and the part's frozen
settings (:mod:`.settings`) and returning its typed result (:mod:`.results`):

* :mod:`extensions.machine` (outside the package: deployment uses it too): the CPU, /proc readers, load and the
  CPU use of other processes, resident-set size;
* :mod:`.models`: the models of a run (:class:`~.results.Entry`, one per YAML, grouped by scale with the plain
  YOLOv5 of that scale); :mod:`.build`: building and fusing them quietly;
* :mod:`.stats`: medians, quantiles and ratio statistics of timed pairs; mean, sd and Welch/paired
  confidence intervals over seeds, and the verdict each interval supports;
* :mod:`.cost`: params and GFLOPs;
* :mod:`.timing`: timed pairs alternating plain and extension, PyTorch and onnxruntime latency;
  :mod:`.openvino`: the OpenVINO runtimes;
* :mod:`.training`: training throughput and peak training memory;
* :mod:`.accuracy` and :mod:`.cases`: training runs with ``yolov5/train.py`` over seeds in each case, and their
  mAP (fail closed: a missing seed fails the run);
* :mod:`.reference`: our blocks and stages against timm's (the blocks part); :mod:`.gpu`: the GPU part;
* :mod:`.profiling`: per-layer times and dominant ops of the blocks that miss a target;
* :mod:`.targets`: the project's targets per family, met or missed;
* :mod:`.report`, :mod:`.report_accuracy`, :mod:`.report_gpu` and :mod:`.plots`: ``benchmark.md``,
  ``benchmark.json``, the PNGs and the text of the summary a script prints.

The package prints nothing and exits nothing: errors are :class:`~.settings.BenchmarkError`. It only holds
modules (nothing is imported here), so the fresh process that measures training memory imports nothing twice.
"""
