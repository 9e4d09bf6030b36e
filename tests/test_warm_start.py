"""Warm start (docs/warm_start.md): extensions/warm_start/ and scripts/warm_start.py on a tiny plain yolov5n.

The plain checkpoints start from random weights and get BatchNorm statistics of the data; the one every family
is fitted to first trains 60 AdamW steps (seconds) on a handful of synthetic 64 px images, so its layers compute
features of the data (a random layer is a full-rank random map that no other block design imitates closely).
Per family: every swapped layer's error is at least halved by the fit, and train.py's transfer takes every tensor
of the start model but the anchors; once through the command line and train.py itself. Bad input exits 2 with
one line and writes nothing.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import warm_start as cli  # scripts/warm_start.py
import yaml
from conftest import BASE
from e2e_utils import nonet_env, run_yolo
from models.yolo import Model
from utils.dataloaders import create_dataloader
from utils.general import intersect_dicts
from utils.loss import ComputeLoss
from utils.torch_utils import de_parallel

from extensions.compat import load_checkpoint
from extensions.datasets.shapes import ensure_shapes
from extensions.families import FAMILIES
from extensions.pretrained import build_model
from extensions.warm_start import WarmStartSettings, warm_start
from extensions.warm_start.fit import Images, Parts, distil, image_files
from extensions.warm_start.layers import copy_matching, pair_layers
from extensions.warm_start.start import fit_threads

pytestmark = pytest.mark.usefixtures('one_thread')
PLAIN_N = BASE / 'models' / 'yolov5n.yaml'
FIT = WarmStartSettings(img=64, steps=150, head_steps=150, e2e_steps=0, batch=12, lr=5e-3, val_images=8, bn_batches=8,
                        evaluate=False)  # layer-wise only: the per-layer errors with the plain model's inputs


def plain_checkpoint(path: Path, cfg: Path, nc: int, images: Images, seed: int = 1, data: Path | None = None,
                     steps: int = 0) -> Path:
    """A plain YOLOv5 checkpoint as train.py saves it (model in half): random weights with BN statistics of
    ``images``, or with ``steps``, trained that many AdamW steps (batch 16) on ``data``'s train split with YOLOv5's
    loss (seconds at 64 px: a teacher whose layers compute features of the data, not random maps of it)."""
    torch.manual_seed(seed)
    model = Model(str(cfg), ch=3, nc=nc)
    if steps:
        model.hyp, model.nc = yaml.safe_load((BASE / 'data' / 'hyps' / 'hyp.scratch-low.yaml').read_text()), nc
        loader = create_dataloader(str(data.parent / 'images' / 'train'), images.img, 16, 32, hyp=model.hyp,
                                   workers=0, prefix='')[0]
        opt, loss_fn, n = torch.optim.AdamW(model.parameters(), lr=2e-3), ComputeLoss(model), 0
        model.train()
        while n < steps:
            for imgs, targets, *_ in loader:
                loss = loss_fn(model(imgs.float() / 255), targets)[0]
                opt.zero_grad()
                loss.backward()
                opt.step()
                n += 1
                if n == steps:
                    break
    else:  # random weights: BN statistics of the data (a trained model has its own)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None
        model.train()
        with torch.no_grad():
            model(images.batch(range(len(images)), False))
    model.eval()
    torch.save({'epoch': -1, 'model': de_parallel(model).half(), 'ema': None, 'optimizer': None,
                'best_fitness': None, 'updates': None, 'opt': None, 'git': None, 'date': None}, path)
    return path


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('warm')
    data = ensure_shapes(tmp / 'shapes', img=64, train=96, val=8, seed=3, classes=3, scene='demo', verbose=False)
    images = Images(image_files(data.parent / 'images' / 'train', 'train'), 64, 96, np.random.default_rng(0))
    return SimpleNamespace(tmp=tmp, data=data, plain=plain_checkpoint(tmp / 'plain.pt', PLAIN_N, 3, images,
                                                                      data=data, steps=60),
                           plain5=plain_checkpoint(tmp / 'plain-nc5.pt', PLAIN_N, 5, images),
                           plain_s=plain_checkpoint(tmp / 'plain-s.pt', BASE / 'models' / 'yolov5s.yaml', 3, images))


def train_transfer(ckpt: dict, cfg: Path, nc: int) -> tuple[int, int, list]:
    """What train.py --weights does with the checkpoint: (transferred, total, names left out)."""
    model = build_model(cfg, nc=nc)
    csd = intersect_dicts(ckpt['model'].float().state_dict(), model.state_dict(), exclude=['anchor'])
    return len(csd), len(model.state_dict()), sorted(set(model.state_dict()) - set(csd))


@pytest.mark.parametrize('family', FAMILIES, ids=lambda f: f.key)
def test_fit_lowers_every_swapped_layer_error(tiny, family):
    cfg = family.yaml('n')
    r = warm_start(tiny.plain, cfg, tiny.data, FIT)
    assert [f.index for f in r.layers] == [2, 4, 6, 8, 13, 17, 20, 23]  # yolov5n's C3 layers
    assert all(f.student == family.c3 and f.teacher == 'C3' for f in r.layers)
    errors = [(f.index, round(f.before, 3), round(f.after, 3)) for f in r.layers]
    exact = [f for f in r.layers if f.before < 1e-6]  # a block C3's copied tensors already make exact (a C3 alike)
    assert all(f.after <= 0.05 for f in exact), errors
    assert all(f.after <= 0.5 * f.before for f in r.layers if f not in exact), errors  # every layer at least halved
    got, total, left = train_transfer(r.checkpoint, cfg, 3)
    assert (got, total) == (r.transferable, r.total) and left == ['model.24.anchors']


@pytest.mark.parametrize('scale', ['n', 's', 'm', 'l', 'x'])
def test_every_scale_pairs_and_copies_all_but_the_swapped_bottlenecks(scale):
    """At every scale each family YAML pairs with plain YOLOv5 layer by layer: C3 layers swapped, everything else
    copied, and every tensor copied but (at most) those of the swapped C3s' inner blocks (``m``)."""
    torch.manual_seed(0)
    teacher = Model(str(BASE / 'models' / f'yolov5{scale}.yaml'), ch=3, nc=80).eval()
    for family in FAMILIES:
        student = build_model(family.yaml(scale), nc=80)
        pairs = pair_layers(teacher, student, 'plain', family.yaml(scale).name)
        swaps = [p.index for p in pairs if p.kind == 'swap']
        assert swaps == [2, 4, 6, 8, 13, 17, 20, 23] and {p.kind for p in pairs} == {'copy', 'swap'}
        counts = copy_matching(teacher, student, pairs)
        inner = {k for k in student.state_dict() if any(k.startswith(f'model.{i}.m.') for i in swaps)}
        assert counts['keys'] >= set(student.state_dict()) - inner, family.key


@pytest.mark.parametrize(('mib', 'available', 'want'), [(10.5, 2, 1), (21.1, 16, 1), (42.2, 2, 2), (84.4, 2, 2),
                                                      (84.4, 16, 4), (337.5, 16, 16), (0.1, 1, 1)])
def test_fit_threads_follow_the_work_per_step(mib, available, want):
    """yolov5n at 160 px (10.5 MiB per batch of 8) fits on one thread; yolov5s at 320 (84 MiB) on up to 4."""
    assert fit_threads(mib, available) == want


def test_auto_threads_fit_a_tiny_model_on_one(tiny):
    seen = set()
    torch.set_num_threads(2)
    try:
        r = warm_start(tiny.plain, FAMILIES[0].yaml('n'), tiny.data, replace(FIT, steps=2, head_steps=2),
                       progress=lambda *_: seen.add(torch.get_num_threads()))
        assert r.threads == 1 and seen == {1} and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)  # as the module's one_thread fixture set it
    assert r.checkpoint['warm_start']['threads'] == 1


def test_other_class_count_keeps_box_rows(tiny):
    """A 5-class checkpoint for 3-class data: Detect's box/objectness rows copied, class rows YOLOv5's init."""
    family, seen = FAMILIES[0], set()
    r = warm_start(tiny.plain5, family.yaml('n'), tiny.data, replace(FIT, steps=3, head_steps=3, threads=2),
                   progress=lambda *_: seen.add(torch.get_num_threads()))
    assert seen == {2} and r.threads == 2 and torch.get_num_threads() == 1  # the caller's restored after
    assert r.nc == 3 and [p.kind for p in r.pairs][-1] == 'detect' and len(r.partial) == 6
    teacher, student = load_checkpoint(tiny.plain5)['model'].float(), r.checkpoint['model']
    torch.manual_seed(FIT.seed)
    fresh = build_model(family.yaml('n'), nc=3)
    for t, s, f in zip(teacher.model[-1].m, student.model[-1].m, fresh.model[-1].m):
        tw, sw, fw = (c.weight.detach().view(3, -1, c.in_channels) for c in (t, s, f))
        assert torch.equal(sw[:, :5], tw[:, :5])
        assert torch.equal(sw[:, 5:], fw[:, 5:])
    got, total, _ = train_transfer(r.checkpoint, family.yaml('n'), 3)
    assert got == total - 1


@pytest.mark.e2e
def test_cli_writes_a_start_checkpoint_train_py_loads_whole(tiny):
    family = FAMILIES[-1]
    out, env = tiny.tmp / 'start.pt', nonet_env(tiny.tmp)
    _, log = run_yolo('scripts/warm_start.py', '--weights', tiny.plain, '--cfg', family.yaml('n'), '--data',
                      tiny.data, '--out', out, '--img', 64, '--steps', 20, '--head-steps', 30, '--e2e-steps', 5,
                      '--batch', 8, env=env)
    assert out.is_file() and 'fit layers' in log and 'val mAP50-95 at 64: plain checkpoint' in log, log[-3000:]
    _, log = run_yolo('train.py', '--weights', out, '--cfg', family.yaml('n'), '--data', tiny.data, '--img', 64,
                      '--epochs', 1, '--batch-size', 8, '--workers', 0, '--noplots', '--device', 'cpu',
                      '--project', tiny.tmp / 'runs', '--name', 'warm', env=env)
    line = next(ln for ln in log.splitlines() if 'Transferred' in ln)
    got, total = (int(v) for v in line.split('Transferred ')[1].split(' ')[0].split('/'))
    assert got == total - 1, line  # everything but Detect's anchors, which train.py re-derives


def test_plain_yaml_copies_the_model_unchanged(tiny, capsys):
    out = tiny.tmp / 'plain-copy.pt'
    assert cli.main(['--weights', str(tiny.plain), '--cfg', str(PLAIN_N), '--data', str(tiny.data), '--out',
                     str(out), '--img', '64', '--no-val']) == 0
    assert 'no swapped layer' in capsys.readouterr().out
    want, got = load_checkpoint(tiny.plain)['model'].float().state_dict(), load_checkpoint(out)['model'].state_dict()
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)


BAD = {
    'mismatched checkpoint': (lambda t: ['--weights', t.plain_s], 'layer 0'),
    'steps 0': (lambda t: ['--steps', '0'], 'steps'),
    'head steps 0': (lambda t: ['--head-steps', '0'], 'head_steps'),
    'negative threads': (lambda t: ['--threads', '-1'], 'threads'),
    'missing checkpoint': (lambda t: ['--weights', t.tmp / 'nope.pt'], 'nope.pt'),
    'foreign checkpoint': (lambda t: ['--weights', t.foreign], 'foreign.pt'),
    'data without images': (lambda t: ['--data', t.empty_data], 'no images'),
    'existing out': (lambda t: ['--out', t.existing], 'exists'),
}


@pytest.mark.parametrize('case', BAD)
def test_bad_input_exits_2_with_one_line_writing_nothing(tiny, capsys, case):
    t = tiny
    t.foreign = t.tmp / 'foreign.pt'
    torch.save({'weights': torch.zeros(3)}, t.foreign)
    (t.tmp / 'empty' / 'images').mkdir(parents=True, exist_ok=True)
    t.empty_data = t.tmp / 'empty.yaml'
    t.empty_data.write_text(f'path: {t.tmp / "empty"}\ntrain: images\nval: images\nnames: [a, b, c]\n')
    t.existing = t.tmp / 'existing.pt'
    t.existing.write_bytes(b'keep me')
    args = {'--weights': t.plain, '--cfg': FAMILIES[0].yaml('n'), '--data': t.data, '--out': t.tmp / 'bad.pt',
            '--img': 64, '--steps': 3, '--head-steps': 3}
    extra, needle = BAD[case]
    e = extra(t)
    args[e[0]] = e[1]
    before = sorted(p.name for p in t.tmp.iterdir())
    assert cli.main([str(x) for kv in args.items() for x in kv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('warm_start: error: ') and needle in err[0], err
    assert sorted(p.name for p in t.tmp.iterdir()) == before and t.existing.read_bytes() == b'keep me'


def test_distil_stops_each_layer_at_its_own_step_count():
    torch.manual_seed(0)
    student = torch.nn.Module()
    student.model = torch.nn.ModuleList([torch.nn.Conv2d(2, 2, 1), torch.nn.Conv2d(2, 2, 1)])
    parts = Parts(student, [0, 1], copied=set(), train_copied=True)
    x = torch.randn(4, 2, 3, 3)
    pool = [(x, {0: x, 1: x}, {0: 2 * x, 1: -x})] * 5
    start1, seen = student.model[1].weight.detach().clone(), {}

    def progress(stage, step, total, loss):
        seen[step] = (total, student.model[0].weight.detach().clone(), student.model[1].weight.detach().clone())

    losses = distil(parts, pool, steps={0: 2, 1: 5}, lr=1e-2, progress=progress)
    assert len(losses) == 5 and sorted(seen) == [1, 2, 3, 4, 5] and seen[5][0] == 5
    assert not torch.equal(seen[1][1], seen[2][1])  # layer 0 fits for its 2 steps ...
    assert torch.equal(seen[2][1], student.model[0].weight)  # ... and not after
    assert not torch.equal(seen[4][2], student.model[1].weight) and not torch.equal(start1, seen[2][2])
    with pytest.raises(ValueError, match='same number of steps'):
        distil(parts, pool, steps={0: 2, 1: 5}, lr=1e-2, own_inputs=True)
