"""The report's PNG plots: params and GFLOPs, latency and training ratios, and (with accuracy) per-seed mAP with
each model's mean and 95% interval, and mean mAP against latency. Drawn with matplotlib's object API (no pyplot
state, no display needed)."""

from __future__ import annotations

from pathlib import Path

from matplotlib import style
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from extensions import families

from .cases import CASES
from .results import AccuracyResult, Entry
from .targets import OPENVINO_RUNTIMES, TARGET_TRAIN, latency_target, openvino_latency_target

PLAIN_COLOR, OTHER_COLOR = '#555555', '#9467bd'  # plain YOLOv5; variants and YAMLs of no family
PALETTE = ('#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#8c564b', '#e377c2', '#bcbd22', '#17becf')  # by family row


def color(suffix: str) -> str:
    """Colour of a YAML suffix: one per family of extensions.families (its own YAMLs), in table order."""
    if not suffix:
        return PLAIN_COLOR
    rows = [f.suffix for f in families.FAMILIES]
    return PALETTE[rows.index(suffix) % len(PALETTE)] if suffix in rows else OTHER_COLOR


def label(suffix: str) -> str:
    """Legend name of a YAML suffix: YOLOv5, the family's title, a variant's name, or the suffix itself."""
    fam = families.of_suffix(suffix) if suffix else None
    if fam is None:
        return suffix or 'YOLOv5'
    return fam.title if suffix == fam.suffix else fam.variants[suffix].split(':')[0]


def _save(fig: Figure, out: Path, name: str, files: list[str]) -> None:
    fig.tight_layout()
    fig.savefig(out / name, dpi=110)
    files.append(name)


def cost_plot(ents: list[Entry], out: Path, files: list[str]) -> None:
    fig = Figure(figsize=(max(8, 1.3 * len(ents) + 4), 4.2))
    axes = fig.subplots(1, 2)
    col = [color(e.suffix) for e in ents]
    for ax, key, text in ((axes[0], 'params', 'params (M, fused)'), (axes[1], 'gflops', 'GFLOPs at 640')):
        vals = [getattr(e.results.static, key) / (1e6 if key == 'params' else 1) for e in ents]
        bars = ax.bar(range(len(ents)), vals, color=col)
        for b, e in zip(bars, ents):
            r = e.results.cost.params_ratio if key == 'params' else e.results.cost.gflops_ratio
            ax.annotate(f'{r:.2f}x', (b.get_x() + b.get_width() / 2, b.get_height()), ha='center', va='bottom',
                        fontsize=8)
        ax.set_xticks(range(len(ents)), [e.name for e in ents], rotation=35, ha='right', fontsize=8)
        ax.set_ylabel(text)
        ax.set_title(text + ' (ratio to plain of the same scale)', fontsize=9)
        ax.margins(y=0.12)
    _save(fig, out, 'benchmark_params_gflops.png', files)


def _timed(e: Entry, kind: str):
    """e's timed record of a runtime, or of training ('train'); None if not measured."""
    return e.results.train if kind == 'train' else e.results.latency.get(kind)


def _ratio_panel(ax, ext: list[Entry], kinds) -> None:
    """Bars of the median ratio (IQR as error bars) per kind, dashed lines at the families' targets."""
    w = 0.8 / len(kinds)
    for j, (k, text) in enumerate(kinds):
        med, lo, hi = [], [], []
        for e in ext:
            t = _timed(e, k)
            r = t.ratio if t else None
            m = r.median if r else float('nan')
            med.append(m)
            lo.append(m - r.p25 if r else 0)
            hi.append(r.p75 - m if r else 0)
        ax.bar([i + (j - (len(kinds) - 1) / 2) * w for i in range(len(ext))], med, w, yerr=[lo, hi],
               capsize=3, label=text)
    train = kinds[0][0] == 'train'
    ov = not train and any(k.startswith('openvino') for k, _ in kinds)
    for i, e in enumerate(ext):
        lim = (TARGET_TRAIN if e.target_family else None) if train else latency_target(e)
        if lim is not None:
            ax.hlines(lim, i - 0.45, i + 0.45, colors='k', linestyles='--', lw=0.9)
        lim = openvino_latency_target(e) if ov else None
        if lim is not None:
            ax.hlines(lim, i - 0.45, i + 0.45, colors='k', linestyles=':', lw=0.9)
    ax.axhline(1.0, color='grey', lw=0.6)
    ax.set_xticks(range(len(ext)), [e.name for e in ext], rotation=30, ha='right', fontsize=8)
    if train:
        ax.set_ylabel('throughput ratio to plain (higher is better)')
        ax.set_title('Training images/s, alternated pairs (median, IQR)', fontsize=9)
    else:
        ax.set_ylabel('latency ratio to plain (lower is better)')
        ax.set_title('Batch-1 latency, alternated pairs (median, IQR)', fontsize=9)
        ax.legend(fontsize=8)


def ratio_plot(ents: list[Entry], out: Path, files: list[str]) -> None:
    ext = [e for e in ents if not e.plain]
    ov = [(k, t) for k, t in OPENVINO_RUNTIMES if any(k in e.results.latency for e in ext)]
    if not (ext and any(_timed(e, k) for e in ext for k in ('torch', 'onnx', 'train'))):
        return
    lat = (('torch', 'PyTorch fused'), ('onnx', 'onnxruntime'), *ov)
    fig = Figure(figsize=(max(9, (1.2 + 0.3 * len(ov)) * len(ext) + 6), 4.4))
    axes = fig.subplots(1, 2, gridspec_kw={'width_ratios': [2 + len(ov) / 2, 1]})
    for ax, kinds in zip(axes, (lat, (('train', 'training'),))):
        _ratio_panel(ax, ext, kinds)
    fig.text(0.01, 0.01, "dashed: the project's target for the family" + (
        '; dotted: its OpenVINO latency target' if ov else ''), fontsize=7)
    _save(fig, out, 'benchmark_ratios.png', files)


def _blocks(acc: AccuracyResult | None) -> list[tuple[str, str, dict]]:
    return acc.blocks() if acc else []


def _words(case: str) -> str:
    return CASES[case].words if case in CASES else case


def seeds_plot(ents: list[Entry], acc: AccuracyResult | None, out: Path, files: list[str]) -> None:
    """Per dataset and case: each model's per-seed mAP50-95 (dots), its mean (bar) and the 95% t-interval of the
    mean (error bar); a dotted line at plain YOLOv5's mean of each scale."""
    blocks = _blocks(acc)
    if not blocks:
        return
    order = [e.name for e in ents]
    suffix = {e.name: e.suffix for e in ents}
    width = max(5.0, 0.9 * max(len(b['models']) for _, _, b in blocks) + 2.5)
    fig = Figure(figsize=(width * len(blocks), 4.6))
    axes = fig.subplots(1, len(blocks), squeeze=False, sharey=True)
    for ax, (d, case, b) in zip(axes[0], blocks):
        names = sorted(b['models'], key=lambda n: order.index(n) if n in order else len(order))
        for i, n in enumerate(names):
            v = b['models'][n]['mAP50-95']
            col = color(suffix.get(n, ''))
            k = len(v['values'])
            xs = [i - 0.12 + 0.18 * (j - (k - 1) / 2) / max(1, k - 1) for j in range(k)]
            ax.scatter(xs, v['values'], color=col, s=22, alpha=0.75, zorder=3)
            lo, hi = v['lo'], v['hi']
            yerr = [[v['mean'] - lo], [hi - v['mean']]] if lo == lo and hi == hi else None
            ax.errorbar([i + 0.18], [v['mean']], yerr=yerr, fmt='D', color=col, ms=6, capsize=4, lw=1.4, zorder=4)
            if not suffix.get(n):
                ax.axhline(v['mean'], color=PLAIN_COLOR, lw=0.8, ls=':', zorder=1)
        ax.set_xticks(range(len(names)), names, rotation=30, ha='right', fontsize=8)
        ep = f'{b["epochs"]} epoch' + ('s' if b['epochs'] != 1 else '')
        ax.set_title(f'{d}: {_words(case)}\n{len(b["seeds"])} seeds, {ep}, '
                     f'img {b["img"]}', fontsize=9)
        ax.grid(axis='y', alpha=0.3)
    axes[0][0].set_ylabel('mAP50-95, final epoch (val)')
    fig.text(0.01, 0.01, 'dots: one run per seed; diamond: mean with its 95% t-interval; dotted: plain YOLOv5\'s '
             'mean. SHORT schedule on synthetic data, not a COCO claim.', fontsize=7)
    _save(fig, out, 'benchmark_accuracy_seeds.png', files)


def accuracy_plot(ents: list[Entry], acc: AccuracyResult | None, out: Path, files: list[str]) -> None:
    """Mean mAP50-95 over seeds (95% interval of the mean) against PyTorch latency, per dataset and case."""
    blocks = _blocks(acc)
    if not blocks or not any('torch' in e.results.latency for e in ents):
        return
    fig = Figure(figsize=(5.5 * len(blocks), 4.4))
    axes = fig.subplots(1, len(blocks), squeeze=False)
    suffixes = sorted({e.suffix for e in ents}, key=lambda f: (f != '', f))
    for ax, (d, case, b) in zip(axes[0], blocks):
        for e in ents:
            m = b['models'].get(e.name)
            if not m or 'torch' not in e.results.latency:
                continue
            v, x = m['mAP50-95'], e.results.latency['torch'].latency_ms
            yerr = [[v['mean'] - v['lo']], [v['hi'] - v['mean']]] if v['lo'] == v['lo'] else None
            ax.errorbar([x], [v['mean']], yerr=yerr, color=color(e.suffix), capsize=3,
                        fmt='o' if e.scale == 'n' else 's' if e.scale == 's' else '^', ms=7)
            ax.annotate(e.name, (x, v['mean']), fontsize=7, xytext=(4, 3), textcoords='offset points')
        ax.legend(handles=[Line2D([], [], ls='', marker='o', color=color(f), label=label(f)) for f in suffixes],
                  fontsize=7)
        ax.set_xlabel('PyTorch fused latency, batch 1 (ms)')
        ax.set_ylabel(f'mAP50-95, mean of {len(b["seeds"])} seeds (95% CI)')
        ax.set_title(f'{d}, {_words(case)}: SHORT schedule ({b["epochs"]} epochs), not a COCO claim',
                     fontsize=9)
        ax.grid(alpha=0.3)
    _save(fig, out, 'benchmark_latency_map.png', files)


def plots(ents: list[Entry], acc: AccuracyResult | None, out: Path) -> list[str]:
    """Write the plots into out; their file names, in the report's order. Drawn with matplotlib's default style,
    whatever an imported module set (YOLOv5's utils.plots changes the font size), so that a measuring run and
    --report-only draw the same."""
    files: list[str] = []
    with style.context('default'):
        if any(e.results.static for e in ents):
            cost_plot(ents, out, files)
        ratio_plot(ents, out, files)
        seeds_plot(ents, acc, out, files)
        accuracy_plot(ents, acc, out, files)
    return files
