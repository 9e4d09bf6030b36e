#!/usr/bin/env python3
"""What OpenVINO executes for plain YOLOv5 and each family, node by node (for docs/benchmark_notes.md).

    python scripts/dev/openvino_nodes.py [--scale s] [--img 640] [--runtime openvino-int8] [--iters 10]
        [--threads 1] [--calib 32] [--families res2 resnest serd] [--variant NAME ...] [--json out.json]

For each model (plain YOLOv5 of the scale first): build, fuse, export to ONNX as the benchmark does, convert
with OpenVINO, quantize with NNCF for ``openvino-int8`` (the deployment's settings, extensions/deploy/openvino.py),
compile with ``PERF_COUNT``, read the executed graph (``compiled.get_runtime_model()``: each node's layerType,
runtimePrecision, primitiveType, outputLayouts) and the per-node performance counters (median of --iters
inferences). Prints, per model:

* executed nodes by layer type and precision, with their summed time (the figures that do not depend on the
  machine's load are the counts and precisions; times are per-node wall times, noisy on a busy machine);
* time per top-level YOLOv5 layer against plain's (the swapped C3 positions show where an extension loses);
* every Reorder (what it converts between) and every convolution left in float, with their times;
* the nodes of the block's own parts (split/concat, radix softmax, pools, multiplies).

``--variant`` rewrites how a block is exported (same math, checked: the ONNX output must equal the PyTorch
output before anything is measured) to compare export graphs; ``--list-variants`` names them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import _bootstrap  # noqa: F401  (this checkout first on sys.path: scripts/_bootstrap.py)

import numpy as np
import torch
import torch.nn.functional as F
from res2_variants import _chain  # scripts/dev: the Bottle2neck forward from its splits

from extensions import families
from extensions.benchmark import openvino as bov
from extensions.benchmark.build import build, fused
from extensions.benchmark.models import plain_entry
from extensions.benchmark.stats import ratio_stats
from extensions.benchmark.timing import export_onnx
from extensions.deploy.openvino import detect_head_name
from extensions.machine import loadavg
from extensions.res2net import conv_chunks

CPU = torch.device('cpu')
LAYER = re.compile(r'/model\.(\d+)/')


# ------------------------------------------------------------------------------------------ export variants
def _res2_split_forward(self, x):
    """Bottle2neck with conv1 exported as one Conv and a Split (the graph before conv_chunks)."""
    return _chain(self, x, self.conv1(x).split(self.width, 1))


def _sa_convs(sa, xs):
    """The split-attention conv as radix convs (groups g each), split r over input chunk r: no grouped conv, no
    Split of its output."""
    m, c2, g = sa.conv, sa.c2, sa.conv.conv.groups // sa.radix
    conv, bn = m.conv, getattr(m, 'bn', None)
    out = []
    for r in range(sa.radix):
        c = slice(r * c2, (r + 1) * c2)
        y = F.conv2d(xs[r], conv.weight[c], None if conv.bias is None else conv.bias[c], conv.stride, conv.padding,
                     conv.dilation, g)
        if bn is not None:
            y = F.batch_norm(y, bn.running_mean[c], bn.running_var[c], bn.weight[c], bn.bias[c], False, 0.0, bn.eps)
        out.append(m.act(y))
    return out


def _sa_weights(sa, gap):
    """The radix weights a_r as 4-D channel maps: fc2 as radix convs (one per radix split, groups g), softmax
    across them elementwise (radix 2: sigmoid of the logit difference); no Reshape/Transpose/Softmax."""
    h, fc2, R = sa.fc1(gap), sa.fc2, sa.radix
    g = fc2.groups
    cg = sa.c2 // g
    logits = []
    for r in range(R):
        idx = torch.tensor([j * R * cg + r * cg + k for j in range(g) for k in range(cg)])
        logits.append(F.conv2d(h, fc2.weight[idx], fc2.bias[idx], groups=g))
    if R == 2:
        return [torch.sigmoid(logits[0] - logits[1]), torch.sigmoid(logits[1] - logits[0])]
    mx = logits[0]
    for lg in logits[1:]:
        mx = torch.maximum(mx, lg)
    e = [torch.exp(lg - mx) for lg in logits]
    s = e[0]
    for t in e[1:]:
        s = s + t
    return [t / s for t in e]


def _sa_tail(sa, xs, weights):
    gap = xs[0].mean((2, 3), keepdim=True)
    for t in xs[1:]:
        gap = gap + t.mean((2, 3), keepdim=True)
    a = weights(sa, gap)
    out = xs[0] * a[0]
    for xr, ar in zip(xs[1:], a[1:]):
        out = out + xr * ar
    return out


def _sa_shipped_weights(sa, gap):
    return sa.rsoftmax(sa.fc2(sa.fc1(gap))).split(sa.c2, 1)


def _resnest_forward(chunks: bool, weights):
    def forward(self, x):
        """ResNeStBottleneck exported with conv1 + the split-attention conv as radix chunks and/or the radix
        weights without Reshape/Transpose/Softmax."""
        sa = self.conv2
        if sa.radix == 1:
            return self.__class__._shipped_forward(self, x)
        if chunks:
            xs = _sa_convs(sa, [self.avd_first(t) for t in conv_chunks(self.conv1, x, sa.radix)])
        else:
            xs = sa.conv(self.avd_first(self.conv1(x))).split(sa.c2, 1)
        y = self.conv3(self.avd_last(_sa_tail(sa, xs, weights)))
        return self.act(y + self.shortcut(x)) if self.residual else y
    return forward


VARIANTS: dict[str, tuple[str, str, str, object]] = {
    # name: (family key, module, attribute, replacement applied only while that family's model is exported)
    'res2-split': ('res2', 'extensions.res2net', 'Bottle2neck.forward', _res2_split_forward),
    'resnest-chunks': ('resnest', 'extensions.resnest', 'ResNeStBottleneck.forward',
                       _resnest_forward(True, _sa_shipped_weights)),
    'resnest-sigmoid': ('resnest', 'extensions.resnest', 'ResNeStBottleneck.forward',
                        _resnest_forward(False, _sa_weights)),
    'resnest-both': ('resnest', 'extensions.resnest', 'ResNeStBottleneck.forward', _resnest_forward(True, _sa_weights)),
}


def apply_variants(names: list[str]):
    """Patch the named export variants in; returns a function that undoes it."""
    undo = []
    for n in names:
        _, mod, attr, new = VARIANTS[n]
        obj = importlib.import_module(mod)
        *path, last = attr.split('.')
        for p in path:
            obj = getattr(obj, p)
        undo.append((obj, last, getattr(obj, last)))
        setattr(obj, '_shipped_' + last, getattr(obj, last))
        setattr(obj, last, new)

    def restore():
        for obj, last, old in reversed(undo):
            setattr(obj, last, old)
    return restore


def _gates_f32(kw: dict, nncf) -> dict:
    """Leave the attention/SE gate paths (pooled 1x1 maps: fc1, fc2, radix softmax) unquantized."""
    sc = kw['ignored_scope']
    pats = [*sc.patterns, r'/(fc1|fc2|rsoftmax|se)/', r'/conv2/(Softmax|Sigmoid|Sub)']
    return {**kw, 'ignored_scope': nncf.IgnoredScope(names=sc.names, patterns=pats, types=sc.types,
                                                     subgraphs=sc.subgraphs, validate=False)}


QVARIANTS = {  # name: nncf.quantize keyword arguments -> changed ones (applied to every model, plain included)
    'q-performance': lambda kw, nncf: {**kw, 'preset': nncf.QuantizationPreset.PERFORMANCE},
    'q-gates-f32': _gates_f32,
    'q-no-fast-bc': lambda kw, nncf: {**kw, 'fast_bias_correction': False},
}


def quantize(model, calib, head, qvariant: str | None):
    """bov.quantize (the deployment's settings), with a QVARIANTS change of nncf.quantize's arguments."""
    if not qvariant:
        return bov.quantize(model, calib, head)
    import nncf  # noqa: PLC0415  (optional: only the INT8 variants need it)
    real = nncf.quantize

    def patched(m, ds, **kw):
        return real(m, ds, **QVARIANTS[qvariant](kw, nncf))
    nncf.quantize = patched
    try:
        return bov.quantize(model, calib, head)
    finally:
        nncf.quantize = real


def check_onnx(fm, f: Path, img: int) -> float:
    """Max abs difference of the ONNX export (onnxruntime) from the fused PyTorch model on a fixed input."""
    import onnxruntime as ort  # noqa: PLC0415  (optional: only the ONNX check needs it)
    x = torch.rand(1, 3, img, img, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        want = fm(x)[0].numpy()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    got = ort.InferenceSession(str(f), so, providers=['CPUExecutionProvider']).run(None, {'images': x.numpy()})[0]
    err = float(np.abs(got - want).max())
    if not np.allclose(got, want, rtol=1e-4, atol=1e-3):
        raise SystemExit(f'{f.name}: the ONNX export differs from PyTorch (max abs {err:.3g}): not the same math')
    return err


# ------------------------------------------------------------------------------------------------ analysis
def layer_of(n: dict) -> int | None:
    m = LAYER.search(n['name']) or LAYER.search(n['original'])
    return int(m.group(1)) if m else None


PARTS = (  # (part, pattern on the node's name or the layers fused into it), first match wins
    ('radix softmax', re.compile(r'rsoftmax|Softmax')),
    ('split-attention fc', re.compile(r'/fc[12]/')),
    ('mean pool', re.compile(r'ReduceMean|GlobalAveragePool')),
    ('split/slice', re.compile(r'/Split|/Slice')),
    ('concat', re.compile(r'/Concat')),
    ('multiply/addcmul', re.compile(r'/Mul(_\d+)?$|/Mul(_\d+)?,|addcmul')),
    ('add', re.compile(r'/Add(_\d+)?$|/Add(_\d+)?,')),
    ('reshape/transpose', re.compile(r'Reshape|Transpose|Unsqueeze|Squeeze|Flatten')),
)


def part_of(n: dict) -> str:
    if n['type'] == 'Reorder':
        return 'reorder'
    if n['type'] == 'Convolution':
        return f'conv {n["precision"]}'
    text = n['name'] + ',' + n['original']
    for part, pat in PARTS:
        if pat.search(text):
            return part
    return n['type']


def analyse(name: str, nodes: list[dict], times: dict) -> dict:
    by_name = {n['name']: n for n in nodes}
    ex = [n for n in nodes if n['type'] not in bov.SKIP]
    layers, parts = defaultdict(float), defaultdict(lambda: [0, 0.0])
    for n in ex:
        t = times.get(n['name'], 0.0)
        layers[layer_of(n)] += t
        p = parts[part_of(n)]
        p[0] += 1
        p[1] += t
    reorders = [{'name': n['name'], 'from': [f'{i} ({by_name[i]["type"]} {by_name[i]["precision"]} '
                                              f'{by_name[i]["layouts"]})' for i in n['inputs'] if i in by_name],
                 'to': n['layouts'], 'precision': n['precision'], 'primitive': n['primitive'],
                 'ms': times.get(n['name'], 0.0)} for n in ex if n['type'] == 'Reorder']
    float_convs = [{'name': n['name'], 'precision': n['precision'], 'primitive': n['primitive'],
                    'ms': times.get(n['name'], 0.0)} for n in ex
                   if n['type'] == 'Convolution' and n['precision'] not in ('u8', 'i8')]
    return {'model': name, 'total_ms': sum(times.get(n['name'], 0.0) for n in ex),
            'table': bov.node_table(nodes, times),
            'layers': {str(k): v for k, v in sorted(layers.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))},
            'parts': {p: {'n': v[0], 'ms': v[1]} for p, v in sorted(parts.items())},
            'reorders': reorders, 'float_convs': float_convs,
            'primitives': dict(Counter(f'{n["type"]} {n["primitive"]}' for n in ex)),
            'nodes': ex, 'times': times}


def show(a: dict, plain: dict | None, top: int) -> None:
    print(f'\n=== {a["model"]}: {a["total_ms"]:.1f} ms summed over executed nodes')
    print(f'{"layer type / precision":<32}{"n":>5}{"ms":>9}{"share":>7}')
    for k, v in a['table'].items():
        print(f'{k:<32}{v["n"]:>5}{v["ms"]:>9.2f}{v["ms"] / a["total_ms"]:>7.1%}')
    print('parts:', ', '.join(f'{k} {v["n"]} ({v["ms"]:.1f} ms)' for k, v in a['parts'].items()))
    if plain is not None:
        rows = [f'{k}: {v:.1f}/{plain["layers"].get(k, 0):.1f}' for k, v in a['layers'].items()]
        print('ms per layer (this/plain):', ', '.join(rows))
    if a['reorders']:
        print(f'Reorders ({len(a["reorders"])}, {sum(r["ms"] for r in a["reorders"]):.2f} ms):')
        for r in sorted(a['reorders'], key=lambda r: -r['ms'])[:top]:
            print(f'  {r["ms"]:7.3f} ms {r["precision"]:>4} {r["primitive"]:<14} -> {r["to"]:<8} {r["name"]} '
                  f'<- {", ".join(r["from"])}')
    if a['float_convs']:
        print(f'float convolutions ({len(a["float_convs"])}, {sum(c["ms"] for c in a["float_convs"]):.2f} ms):')
        for c in sorted(a['float_convs'], key=lambda c: -c['ms'])[:top]:
            print(f'  {c["ms"]:7.3f} ms {c["precision"]} {c["primitive"]} {c["name"]}')


def export(cfg: str, name: str, folder: Path, variants: list[str], img: int):
    """(ONNX file, max abs ONNX-PyTorch difference, Detect head scope) of one YAML, fused, exported with the
    variants."""
    fm = fused(build(cfg))
    restore = apply_variants(variants)
    try:
        f = export_onnx(fm, img, folder / f'{name}.onnx', CPU, half=False)
    finally:
        restore()
    return f, check_onnx(fm, f, img), detect_head_name(fm)


def rows_of(opt) -> list[tuple[str, str, list[str], str | None]]:
    """(row, YAML, export variants, quantization variant): plain and each family as shipped, each --variant on
    its family's model, and every model again with each --qvariant."""
    plain = plain_entry(opt.scale).cfg
    cfgs = [plain] + (opt.cfg or [str(families.by_key(k).yaml(opt.scale)) for k in opt.families])
    rows = []
    for q in [None, *opt.qvariant]:
        for cfg in cfgs:
            stem = Path(cfg).stem + (f'~{q}' if q else '')
            rows.append((stem, cfg, [], q))
            for v in opt.variant:
                if Path(cfg).stem.endswith('-' + VARIANTS[v][0]):
                    rows.append((f'{stem}+{v}', cfg, [v], q))
    return rows


def plain_row(row: str, rows) -> str:
    """The plain model's row with the same quantization variant."""
    q = row.split('~', 1)[1].split('+')[0] if '~' in row else None
    return next(r for r, cfg, v, qq in rows if qq == q and not v and 'yolov5' in r and '-' not in r.split('~')[0])


def cpu_times(compiled: dict, x: np.ndarray, rounds: int) -> dict:
    """Process CPU time (s) of one inference of each compiled model, the models taking turns in every round.
    With one inference thread, CPU time leaves out the time the process waited for a core, so on a busy machine
    it says what wall time would on an idle one far more steadily (caches and memory bandwidth still shared)."""
    runs = {k: bov.runner(c, x) for k, c in compiled.items()}
    for f in runs.values():
        f()
        f()
    out = {k: [] for k in runs}
    for _ in range(rounds):
        for k, f in runs.items():
            c0 = time.process_time()
            f()
            out[k].append(time.process_time() - c0)
    return out


def summary_line(a: dict, plain: dict | None, f32: dict | None) -> str:
    t = a['table']

    def g(prefix):
        ks = [k for k in t if k.startswith(prefix)]
        return sum(t[k]['n'] for k in ks), sum(t[k]['ms'] for k in ks)
    conv_n, conv_ms = g('Convolution')
    fconv = sum(v['n'] for k, v in t.items() if k.startswith('Convolution') and k.split()[1] not in ('u8', 'i8'))
    re_n, re_ms = g('Reorder')
    cat_n, cat_ms = g('Concatenation')
    sp_n, sp_ms = g('Split')
    nodes = sum(v['n'] for k, v in t.items() if not k.startswith('Reshape'))
    rel = f'{a["total_ms"] / plain["total_ms"]:.2f}' if plain else '-'
    speed = f'{f32["total_ms"] / a["total_ms"]:.2f}' if f32 else '-'
    return (f'{a["model"]:<36}{a["runtime"]:<15}{nodes:>6}{a["total_ms"]:>8.1f}{rel:>7}{speed:>7}{conv_n:>6}{fconv:>5}'
            f'{conv_ms:>8.1f}{re_n:>5}{re_ms:>7.2f}{cat_n:>5}{cat_ms:>7.2f}{sp_n:>5}{sp_ms:>7.2f}')


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--scale', default='s')
    ap.add_argument('--families', nargs='+', default=[f.key for f in families.FAMILIES])
    ap.add_argument('--cfg', nargs='+', default=None, help='model YAMLs instead of --families (plain is added)')
    ap.add_argument('--img', type=int, default=640)
    ap.add_argument('--runtimes', nargs='+', default=['openvino-f32', 'openvino-int8'], choices=bov.KINDS)
    ap.add_argument('--iters', type=int, default=10,
                    help='profiling rounds (PERF_COUNT); every model and runtime runs once per round; 0: none')
    ap.add_argument('--cpu-rounds', type=int, default=0,
                    help='rounds of whole inferences timed by process CPU time (use with --threads 1)')
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--stat', choices=('median', 'min'), default='min',
                    help='per-node time over the rounds (default min: the run least disturbed by a busy machine)')
    ap.add_argument('--calib', type=int, default=32, help='calibration images (INT8)')
    ap.add_argument('--variant', nargs='*', default=[], choices=sorted(VARIANTS),
                    help='extra rows: the family\'s model exported with this variant')
    ap.add_argument('--qvariant', nargs='*', default=[], choices=sorted(QVARIANTS),
                    help='extra rows: every model quantized with this change of the NNCF settings')
    ap.add_argument('--list-variants', action='store_true')
    ap.add_argument('--top', type=int, default=12, help='Reorders / float convs listed per model')
    ap.add_argument('--quiet', action='store_true', help='only the summary tables')
    ap.add_argument('--save', default=None, help='folder to keep the ONNX and OpenVINO IR files in')
    ap.add_argument('--reuse', action='store_true', help='read the IR kept in --save by an earlier run instead of '
                    'exporting (and quantizing) again')
    ap.add_argument('--json', default=None)
    opt = ap.parse_args(argv)
    if opt.list_variants:
        for k, (fam, mod, attr, fn) in VARIANTS.items():
            print(f'{k} ({fam}): {mod}.{attr} <- {fn.__doc__.splitlines()[0]}')
        for k, fn in QVARIANTS.items():
            print(f'{k} (NNCF settings, every model)' + (f': {fn.__doc__.splitlines()[0]}' if fn.__doc__ else ''))
        return 0
    bov.require(opt.runtimes)
    torch.set_num_threads(opt.threads)
    x = torch.rand(1, 3, opt.img, opt.img, generator=torch.Generator().manual_seed(0)).numpy()
    calib = bov.calibration(opt.img, opt.calib) if 'openvino-int8' in opt.runtimes else None
    print(f'{", ".join(opt.runtimes)}; img {opt.img}, {opt.threads} threads, {opt.iters} profiling rounds '
          f'({opt.stat} per node), {opt.cpu_rounds} CPU-time rounds; CPU flags {", ".join(bov.cpu_flag_list())}; '
          f'load average {loadavg()}', flush=True)
    rows = rows_of(opt)
    models, meta = {}, {}
    with tempfile.TemporaryDirectory(prefix='ov-nodes-') as tmp:
        folder = Path(opt.save or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        onnx = {}
        for name, cfg, variants, q in rows:
            for kind in opt.runtimes:
                if q and kind != 'openvino-int8':
                    continue
                xml = folder / f'{name}-{kind}.xml'
                err = None
                if opt.reuse and xml.is_file():
                    model = bov.ov().Core().read_model(str(xml))
                else:
                    key = (cfg, tuple(variants))
                    if key not in onnx:
                        onnx[key] = export(cfg, name.split('~')[0], folder, variants, opt.img)
                    f, err, head = onnx[key]
                    model = bov.convert(f)
                    if kind == 'openvino-int8':
                        print(f'{name}: quantizing', flush=True)
                        model = quantize(model, calib, head, q)
                    if opt.save:
                        bov.ov().save_model(model, str(xml), compress_to_fp16=False)
                models[(name, kind)] = model
                meta[(name, kind)] = {'onnx_max_abs_diff': err, 'variants': variants, 'qvariant': q}
    results = {}
    if opt.iters:
        compiled = {}
        for key, model in models.items():
            compiled[key], meta[key]['precision'] = bov.compile_model(model, key[1], opt.threads, perf=True)
        print(f'profiling {len(compiled)} compiled models, {opt.iters} rounds; load average {loadavg()}', flush=True)
        times = bov.perf_counters_many(compiled, x, opt.iters, opt.stat)
        for key, c in compiled.items():
            a = analyse(key[0], bov.executed_nodes(c), times[key])
            a.update(runtime=key[1], **meta[key])
            results[key] = a
        del compiled
        if not opt.quiet:
            for (name, kind), a in results.items():
                print(f'\n--- {kind}', end='')
                pr = plain_row(name, rows)
                show(a, results.get((pr, kind)) if name != pr else None, opt.top)
        print(f'\nper-node times ({opt.stat} of {opt.iters} rounds, summed):')
        print(f'{"model":<36}{"runtime":<15}{"nodes":>6}{"ms":>8}{"x plain":>7}{"x f32":>7}{"convs":>6}{"flt":>5}'
              f'{"conv ms":>8}{"reord":>5}{"ms":>7}{"cat":>5}{"ms":>7}{"split":>5}{"ms":>7}')
        for (name, kind), a in results.items():
            pr = plain_row(name, rows)
            print(summary_line(a, results.get((pr, kind)) if name != pr else None,
                               results.get((name.split('~')[0], 'openvino-f32')) if kind != 'openvino-f32' else None))
    if opt.cpu_rounds:
        compiled = {key: bov.compile_model(model, key[1], opt.threads)[0] for key, model in models.items()}
        print(f'\nCPU time per inference ({opt.cpu_rounds} rounds, models taking turns; load average {loadavg()}):')
        ct = cpu_times(compiled, x, opt.cpu_rounds)
        print(f'{"model":<36}{"runtime":<15}{"CPU ms":>8}{"x plain (IQR of per-round ratios)":>36}{"INT8 x f32":>11}')
        for (name, kind), t in ct.items():
            pr = plain_row(name, rows)
            ratios = [b / a for a, b in zip(ct[(pr, kind)], t)]
            st = ratio_stats(ratios)
            f32 = ct.get((name.split('~')[0], 'openvino-f32'))
            sp = f'{np.median(f32) / np.median(t):.2f}' if f32 and kind == 'openvino-int8' else '-'
            print(f'{name:<36}{kind:<15}{1e3 * np.median(t):>8.1f}'
                  f'{st["median"]:>16.3f} ({st["p25"]:.3f}-{st["p75"]:.3f}){"":>4}{sp:>11}')
            results.setdefault((name, kind), {'model': name, 'runtime': kind, **meta[(name, kind)]})['cpu_ms'] = t
    print(f'\nload average at the end: {loadavg()}')
    if opt.json:
        Path(opt.json).write_text(json.dumps(list(results.values()), indent=1, default=str))
    return 0


if __name__ == '__main__':
    sys.exit(main())
