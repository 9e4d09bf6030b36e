"""The GPU part's report section (``benchmark.md``) and its lines in the summary a script prints, from a
:class:`~.results.Report` whose ``gpu`` is set. Standard library only; writes nothing itself."""

from __future__ import annotations

from .results import GpuPass, GpuResult, Report
from .settings import GPU_PASSES

TITLES = {'infer-b1': 'b1 eager', 'infer-b1-graph': 'b1 CUDA graph', 'infer-batch': 'b{b} inference',
          'train-deterministic': 'b{b} train, deterministic', 'train-benchmark': 'b{b} train, cudnn.benchmark'}
MS_PASSES = ('infer-b1', 'infer-b1-graph')  # latency in ms; the others as throughput in images/s


def _title(p: str, batch: int) -> str:
    return TITLES[p].format(b=batch)


def _passes(g: GpuResult) -> list[str]:
    have = {p.name for c in g.cases for p in c.passes}
    return [p for p in GPU_PASSES if p in have]


def _ratio(p: GpuPass | None) -> str:
    if p is None:
        return '-'
    if p.skipped:
        return 'skipped'
    r = f'{p.ratio:.3f}'
    return (f'**{r}**' if p.ratio_q1 > 1.0 else r) + f' ({p.ratio_q1:.2f}-{p.ratio_q3:.2f})'


def _medians(p: GpuPass | None) -> str:
    if p is None or p.skipped:
        return '-' if p is None else 'skipped'
    if p.name in MS_PASSES:
        return f'{p.model_ms:.2f} / {p.ref_ms:.2f}'
    return f'{p.model_ips:.1f} / {p.ref_ips:.1f}'


def skipped(g: GpuResult) -> dict[str, list[str]]:
    """{reason: ['model pass', ...]} of every pass not timed."""
    out: dict[str, list[str]] = {}
    for c in g.cases:
        for p in c.passes:
            if p.skipped:
                out.setdefault(p.skipped, []).append(f'{c.model} {p.name}')
    return out


def summary_line(g: GpuResult) -> list[str]:
    timed = [p for c in g.cases for p in c.passes if not p.skipped]
    n_skip = sum(len(v) for v in skipped(g).values())
    return [f'**GPU part** ({g.device}): {sum(p.ratio_q1 > 1.0 for p in timed)} of {len(timed)} timed passes with '
            f'the whole IQR of the ratio model/reference above 1.00, {n_skip} skipped; see What training and '
            'inference cost on a GPU.', '']


def gpu(rep: Report) -> list[str]:
    """What training and inference cost on a GPU: the ratio model/reference per pass, then the medians."""
    g, o = rep.gpu, rep.gpu_settings
    if not g or not g.cases:
        return []
    passes = _passes(g)
    heads = [_title(p, o.batch) for p in passes]
    cudnn = f', cuDNN {g.cudnn_version}' if g.cudnn_version else ''
    L = ['## What training and inference cost on a GPU', '',
         f'{g.device} (device `{o.device}`), {g.threads} CPU threads, torch {g.torch_version}{cudnn}, timm '
         f'{g.timm_version}; ' + '; '.join(g.notes) + f'. Each model against its plain reference (YOLOv5 at '
         f'{o.img}x{o.img}, timm\'s classifiers, random weights, at {o.timm_img}x{o.timm_img}), {o.pairs} timed pairs '
         f'per pass after {o.warmup} warm-up pairs, their order alternating; wall time (CUDA: synchronised).', '',
         'Passes: **b1 eager**: batch 1, eval (YOLOv5 fused), `inference_mode`; **b1 CUDA graph**: the same forward '
         f'captured once as a CUDA graph and replayed (CUDA only); **b{o.batch} inference**: batch {o.batch}; '
         f'**b{o.batch} train, deterministic**: one training step as yolov5/train.py runs it (YOLOv5: autocast, '
         'ComputeLoss, scaled backward, clip, SGD step, EMA; timm: cross-entropy) under train.py\'s '
         '`init_seeds(deterministic=True)` flags (deterministic algorithms, cudnn.deterministic, cudnn.benchmark '
         f'off); **b{o.batch} train, cudnn.benchmark**: the same step with cudnn.benchmark on, non-deterministic.', '',
         'Ratio model/reference: median of the per-pair time ratios (IQR); above 1.00 the model is slower (it costs '
         'that many times the reference\'s time); **bold**: the whole IQR above 1.00.', '',
         '| model | reference | ' + ' | '.join(heads) + ' |', '|---|---|' + '---:|' * len(passes)]
    for c in g.cases:
        L.append(f'| {c.model} | {c.reference} | ' + ' | '.join(_ratio(c.get(p)) for p in passes) + ' |')
    L += ['', 'Medians, model / reference: ms for batch 1, images/s for the other passes.', '',
          '| model | reference | ' + ' | '.join(heads) + ' |', '|---|---|' + '---:|' * len(passes)]
    for c in g.cases:
        L.append(f'| {c.model} | {c.reference} | ' + ' | '.join(_medians(c.get(p)) for p in passes) + ' |')
    sk = skipped(g)
    return L + [''] + ([f'Skipped ({r}): {", ".join(w)}.' for r, w in sk.items()] + [''] if sk else [])


def gpu_lines(g: GpuResult) -> list[str]:
    """The GPU part as a text table: one row per model and pass (medians of each side, ratio, IQR)."""
    rows = [f'{"model":<20} {"reference":<10} {"pass":<20} {"model":>15} {"ref":>15} {"ratio":>7}  IQR']
    for c in g.cases:
        for p in c.passes:
            if p.skipped:
                rows.append(f'{c.model:<20} {c.reference:<10} {p.name:<20} skipped: {p.skipped}')
                continue
            unit, a, b = ('ms', p.model_ms, p.ref_ms) if p.name in MS_PASSES else ('img/s', p.model_ips, p.ref_ips)
            rows.append(f'{c.model:<20} {c.reference:<10} {p.name:<20} {a:>9.2f} {unit:<5} {b:>9.2f} {unit:<5} '
                        f'{p.ratio:>7.3f}  {p.ratio_q1:.2f}-{p.ratio_q3:.2f}')
    return rows
