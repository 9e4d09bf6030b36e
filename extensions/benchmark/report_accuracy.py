"""The accuracy sections of ``benchmark.md``: how the seeds were trained and compared, per case each model's
mean +- sd over seeds and each family's difference to plain YOLOv5 with its interval and verdict, and the
findings in plain words."""

from __future__ import annotations

import math

from extensions import families

from . import stats
from .cases import CASES
from .models import rel
from .results import AccuracyResult, Entry
from .stats import fnum, fr


def title(case: str) -> str:
    """A case's title in the report (its key if it is no longer a case)."""
    return CASES[case].title if case in CASES else case


def starts_from_checkpoint(case: str) -> bool:
    return case in CASES and CASES[case].pretrained


def epochs(n) -> str:
    return f'{n} epoch' + ('' if n == 1 else 's')


def mean_sd(m: dict | None, metric: str) -> str:
    if not m:
        return '-'
    v = m[metric]
    return f'{v["mean"]:.3f} +- {fr(v["sd"], 3)}'


def _transfer(m: dict) -> str:
    t = m.get('transferred')
    if not t:
        return '-'
    return f'{t[0]}/{t[1]}' if isinstance(t[0], int) else ', '.join(f'{a}/{b}' for a, b in t)


def _family_title(name: str, family: str | None, suffix: str) -> str:
    """'Res2Net (yolov5n-res2)' for a family's own YAML, else the model's name."""
    try:
        fam = families.by_key(family) if family else None
    except ValueError:  # a family of an older run no longer in the table
        fam = None
    return f'{fam.title} ({name})' if fam is not None and fam.suffix == suffix else name


def verdict_lines(acc: AccuracyResult | None) -> list[str]:
    """The verdict of each extension model in each case, in words the interval supports (mAP50-95)."""
    blocks = acc.blocks() if acc else []
    if not blocks:
        return []
    st = acc.settings
    L = [f'**Accuracy** (mAP50-95, extension minus plain YOLOv5 of the same scale, mean over {len(st["seeds"])} '
         f'seeds each, Welch 95% CI; {epochs(st["epochs"])}: a short schedule, see Accuracy below):', '']
    for d, case, b in blocks:
        for name, c in b['comparisons'].items():
            L.append(f'- {d}, {title(case)}: {_family_title(name, c["family"], c["suffix"])}: '
                     f'{c["mAP50-95"]["verdict"]}; run-to-run spread {fr(c["mAP50-95"]["sd_ratio"], 1)}x plain\'s.')
    return L + ['']


def _pretrained_text(acc: AccuracyResult) -> str:
    pre = acc.pretrained or {}
    parts = []
    for s, p in pre.items():
        if p.get('given'):
            parts.append(f'yolov5{s}: `{rel(p["weights"])}` (given with --pretrained)')
        else:
            parts.append(f'yolov5{s}: plain `{p["model"]}` trained by this benchmark on `{p["data"]}` for '
                         f'{epochs(p["epochs"])} (seed {p["seed"]}, same recipe, img {p["img"]}; mAP50-95 '
                         f'{p["mAP50-95"]:.3f} on its own val split), `{rel(p["weights"])}`'
                         + (f' (reused from {p["reused"]})' if p.get('reused') else ''))
    return '; '.join(parts)


def accuracy_method(acc: AccuracyResult) -> list[str]:
    st = acc.settings
    seeds = st['seeds']
    cases = st['cases']
    L = ['## Accuracy over seeds: SHORT SCHEDULE (not a claim about COCO)', '',
         f'Every model trained by `yolov5/train.py` {len(seeds)} times, seeds {", ".join(map(str, seeds))} '
         f'(`--seed`: initial weights, data order, augmentation; nothing else differs between the runs of one '
         f'model), {epochs(st["epochs"])}, batch {st["batch"]}, optimizer {st["optimizer"]}, hyperparameters '
         f'`{rel(st["hyp"])}` (the recipe of the demo, docs/demo.md), `--cache ram`; mAP of the final epoch '
         f'(`--noval`: only the final epoch is validated, and it is the one read) on the dataset\'s val split. '
         f'The same number of seeds for every model; a run that fails makes the whole benchmark fail (no mean of '
         f'the seeds that happened to finish).', '']
    L += ['- ' + CASES[c].method.format(checkpoints=_pretrained_text(acc)) for c in cases if c in CASES]
    L += ['- **Differences**: extension minus plain YOLOv5 of the same scale, mean over seeds, with **Welch\'s '
          't-interval** (95%): the runs of two models are independent samples whose spreads differ (an extension '
          'can vary much more from seed to seed than plain YOLOv5), so the pooled-variance interval would be '
          'wrong; degrees of freedom by Welch-Satterthwaite. The paired-by-seed interval is shown alongside: runs '
          'with the same seed share data order and augmentation but not initial weights, so the pairing is weak. '
          '**Verdicts** use Welch\'s interval of mAP50-95: "better" or "worse" only when the whole interval lies '
          'on one side of 0; otherwise "no difference detectable at this budget" (not "equal": with '
          f'{len(seeds)} seeds the interval is wide, and more seeds narrow it).',
          '- **Spread**: the standard deviation of mAP50-95 over seeds, and its ratio to plain\'s: how much '
          'less predictable one training run of the model is.', '']
    return L


def accuracy(ents: list[Entry], acc: AccuracyResult | None) -> list[str]:
    blocks = acc.blocks() if acc else []
    acc_notes = acc.notes if acc else []
    if not (blocks or acc_notes):
        return []
    L = accuracy_method(acc) if blocks else ['## Accuracy', '']
    order = [e.name for e in ents]
    for d, case, b in blocks:
        seeds = ', '.join(map(str, b['seeds']))
        ft = starts_from_checkpoint(case)
        L += [f'### {d}, {title(case)} (img {b["img"]}, {epochs(b["epochs"])}, seeds {seeds})', '',
              '| model | mAP50 mean +- sd | mAP50-95 mean +- sd | 95% CI of the mean | mAP50-95 per seed |'
              + (' tensors transferred |' if ft else '') + ' CPU min per run |',
              '|---|---:|---:|---:|---|' + ('---:|' if ft else '') + '---:|']
        for name in sorted(b['models'], key=lambda n: order.index(n) if n in order else len(order)):
            m = b['models'][name]
            v = m['mAP50-95']
            reused = sum(bool(r.get('reused')) for r in m['runs'])
            cpu = m.get('cpu_s_mean')
            L.append(f'| {name} | {mean_sd(m, "mAP50")} | {mean_sd(m, "mAP50-95")} | {fnum(v["lo"])}..'
                     f'{fnum(v["hi"])} | {", ".join(f"{x:.3f}" for x in v["values"])} |'
                     + (f' {_transfer(m)} |' if ft else '')
                     + f' {fr(cpu / 60 if cpu is not None else None, 1)}' + (f' ({reused} reused)' if reused else '')
                     + ' |')
        L += start_lines(b, order)
        L += ['', '| vs plain | diff mAP50-95 (Welch 95% CI) | paired by seed (95% CI) | diff mAP50 (Welch 95% CI) '
              '| spread: sd ratio ext/plain | verdict (mAP50-95) |', '|---|---:|---:|---:|---:|---|']
        for name, c in b['comparisons'].items():
            w, p, w50 = c['mAP50-95']['welch'], c['mAP50-95']['paired'], c['mAP50']['welch']
            L.append(f'| {name} vs {c["vs"]} | {fnum(w["diff"], 3, True)} ({fnum(w["lo"], 3, True)}..'
                     f'{fnum(w["hi"], 3, True)}) | '
                     + (f'{fnum(p["diff"], 3, True)} ({fnum(p["lo"], 3, True)}..{fnum(p["hi"], 3, True)})' if p
                        else '-')
                     + f' | {fnum(w50["diff"], 3, True)} ({fnum(w50["lo"], 3, True)}..{fnum(w50["hi"], 3, True)}) | '
                       f'{fr(c["mAP50-95"]["sd_ratio"], 1)} | {c["mAP50-95"]["verdict"]} |')
        L += [''] + findings(case, b) + ['']
    if acc.cpu_s_total is not None and blocks:
        L += [f'CPU time of the training runs (user + sys of train.py and its data loaders, all seeds and cases, '
              f'pretraining included): {acc.cpu_s_total / 3600:.2f} h.', '']
    return L + [f'- {n}' for n in acc_notes] + ([''] if acc_notes else [])


def start_lines(b: dict, order: list) -> list[str]:
    """The start checkpoints a case made per model (Case.start): their val mAP before any fine-tuning against the
    plain checkpoint's, the tensors train.py transfers from them, and what making them cost."""
    made = [(n, b['models'][n]['start']) for n in sorted(b['models'], key=lambda n: order.index(n) if n in order
                                                          else len(order)) if b['models'][n].get('start')]
    if not made:
        return []
    L = ['', '| start checkpoint of | val mAP50-95 before fine-tuning | plain checkpoint | ratio | tensors '
         'transferred | per-layer rel. error: copy -> fit (own input) | CPU min to make | of a fine-tuning run |',
         '|---|---:|---:|---:|---:|---|---:|---:|']
    for name, st in made:
        a, p = st.get('map_start'), st.get('map_plain')
        t = st.get('transferable')
        errs = ', '.join(f'{i}: {x:.2f}->{y:.2f} ({z:.2f})' for i, x, y, z in st.get('layers', []))
        cpu = st['cpu_s'] - (st.get('val_cpu_s') or 0.0) if st.get('cpu_s') is not None else None
        run = b['models'][name].get('cpu_s_mean')
        L.append(f'| {name} | {fnum(a)} | {fnum(p)} | {fr(a / p if a is not None and p else None, 2)} | '
                 f'{f"{t[0]}/{t[1]}" if t else "-"} | {errs or "-"} | {fr(cpu / 60 if cpu is not None else None, 2)}'
                 f' | {f"{100 * cpu / run:.0f}%" if cpu is not None and run else "-"} |')
    data = {st['data'] for _, st in made if st.get('data')}
    threads = {st['threads'] for _, st in made if st.get('threads')}
    L += ['', 'Start checkpoints: val mAP50-95 on the val split of the data they were fitted on'
          + (f' ({", ".join(sorted(data))})' if data else '') + ', before any fine-tuning; CPU min: process CPU '
          'time of the warm start without its two mAP evaluations'
          + (f' ({"/".join(map(str, sorted(threads)))} CPU thread{"s" * (max(threads) > 1)})' if threads else '')
          + ', and its share of the model\'s mean fine-tuning run above.']
    return L


def findings(case: str, b: dict) -> list[str]:
    """The spread of each extension against plain, and after fine-tuning, which families lose and by how much."""
    L = []
    for name, c in b['comparisons'].items():
        pm, em = b['models'][c['vs']]['mAP50-95'], b['models'][name]['mAP50-95']
        r = c['mAP50-95']['sd_ratio']
        if math.isnan(r):
            continue
        L.append(f'- Spread: {name} sd {fr(em["sd"], 3)} against {c["vs"]}\'s {fr(pm["sd"], 3)} '
                 f'({fr(r, 1)}x): ' + ('one run of it says less than one run of plain.' if r > 1.5 else
                                       'much the same run-to-run noise as plain.' if r >= 1 / 1.5 else
                                       'steadier from run to run than plain.'))
    if starts_from_checkpoint(case):
        lose = [(n, c) for n, c in b['comparisons'].items() if c['mAP50-95']['kind'] == 'worse']
        for n, c in lose:
            w = c['mAP50-95']['welch']
            L.append(f'- **{CASES[case].findings}, {n} loses to {c["vs"]}**: by {fnum(-w["diff"])} '
                     f'mAP50-95 ({stats.ci_text(w["lo"], w["hi"])}), starting with '
                     f'{_transfer(b["models"][n])} tensors from the checkpoint against plain\'s '
                     f'{_transfer(b["models"][c["vs"]])}.')
        if not lose and b['comparisons']:
            L.append(f'- {CASES[case].findings}, no extension model is detectably worse than plain at '
                     'this budget (see the intervals: "not detectably worse" is not "as good").')
    return L
