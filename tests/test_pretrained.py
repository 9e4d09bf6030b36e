"""ImageNet-pretrained backbones (docs/pretrained.md): models_yaml/yolov5m-<timm>.yaml, extensions/pretrained.py and
scripts/init_backbone.py, checked against timm offline.

For each of res2net50d, resnest50d and resnetrs50 a timm model with random weights is saved to a file (.safetensors,
a .pth nesting the state dict under 'state_dict', a plain .bin) and goes through the tool (the first one through
the command line). The YOLOv5 model's stride 8/16/32 maps must equal timm's ``features_only=True, out_indices=(2, 3,
4)`` outputs on the normalised input within 1e-5: in eval mode (float32 and float64), after ``Model.fuse()``, and
as an ONNX export run by onnxruntime (float32). Files of another architecture, altered state dicts and non-tensor
files are refused with nothing written; train.py transfers every backbone tensor of the start checkpoint and
``--freeze 5`` keeps the whole backbone, BN statistics included, as loaded; val.py, detect.py and export.py run on
the result.

The random networks are made well conditioned on purpose (see :func:`random_timm`), so that float32 rounding stays
near 1e-7 and the 1e-5 bound tests the mapping, not the arithmetic.
"""

from __future__ import annotations

import ast
import copy
import re
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import onnxruntime as ort
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from e2e_utils import nonet_env, run_yolo
from safetensors.torch import save_file

from extensions import pretrained as P
from extensions.datasets.shapes import ensure_shapes
from extensions.families import FAMILIES
from extensions.outputs import OutputPathError
from extensions.res2net import Res2NetStage
from extensions.resnet_rs import ResNetStem

timm = pytest.importorskip('timm')  # test-only dependency (requirements.txt)

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-5
FORMAT = {'res2net50d': 'safetensors', 'resnest50d': 'pth', 'resnetrs50': 'bin'}  # file type per family
CLI_FAMILY = 'res2net50d'  # made with scripts/init_backbone.py; the others with init_backbone()
PRETRAINED = [f for f in FAMILIES if f.timm]  # the families with a timm model (Family.timm)
MEAN64 = torch.tensor(P.IMAGENET_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
STD64 = torch.tensor(P.IMAGENET_STD, dtype=torch.float64).view(1, 3, 1, 1)
INPUTS = ((2, 3, 64, 96), (1, 3, 67, 93))  # a YOLOv5-shaped batch and an odd size (ceil-mode pools, borders)


def random_timm(name: str, seed: int = 0, **kwargs) -> nn.Module:
    """``timm.create_model(name, pretrained=False)`` with non-trivial BN parameters and statistics, eval mode.

    BN gammas U(0.8, 1.2), betas N(0, 0.1); the last BN of each residual branch and of each projection shortcut
    U(0.2, 0.4) (timm zero-initialises bn3, which would hide every residual branch). Running statistics come from
    one train-mode pass with ``momentum=None`` over normalised random images, then the variances are multiplied by
    4: every BN then halves its normalised input, so the random network is contractive and float32 rounding stays
    near 1e-7 at stride 32 (with data-matched statistics a random ResNeSt-50 amplifies rounding about a
    thousandfold: timm's own float32 output differed from its float64 output by 2e-3).
    """
    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False, **kwargs)
    g = torch.Generator().manual_seed(seed + 1)
    bns = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for n, m in bns:
            lo, hi = (0.2, 0.4) if n.endswith(('bn3', 'downsample.2')) else (0.8, 1.2)
            m.weight.copy_(torch.rand(m.num_features, generator=g) * (hi - lo) + lo)
            m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.reset_running_stats()
            m.momentum = None  # cumulative average: after one pass, the statistics of that batch
        model.train()
        model(((torch.rand(8, 3, 96, 96, generator=g, dtype=torch.float64) - MEAN64) / STD64).float())
        for _, m in bns:
            m.running_var.mul_(4)
            m.momentum = 0.1
    return model.eval()


def save_weights(sd: dict, path: Path, fmt: str) -> Path:
    path = path.with_suffix(f'.{fmt}')
    if fmt == 'safetensors':
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    elif fmt == 'pth':  # as timm's training scripts nest it (their 'args' Namespace left out: weights_only)
        torch.save({'epoch': 1, 'arch': path.stem, 'state_dict': sd}, path)
    else:  # as the Hugging Face hub's pytorch_model.bin
        torch.save(sd, path)
    return path


def init_cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / 'scripts' / 'init_backbone.py'), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def normalised(x):
    return (x.double() - MEAN64) / STD64


class BackboneOnly(nn.Module):
    """Layers 0-4 of a YOLOv5 model, returning the stride 8/16/32 maps (what the ONNX check exports)."""

    def __init__(self, model):
        super().__init__()
        self.model = model.model[:max(P.FEATURE_LAYERS) + 1]

    def forward(self, x):
        return tuple(P.backbone_features(self, x))


def max_err(ours, ref) -> list:
    assert [tuple(o.shape) for o in ours] == [tuple(r.shape) for r in ref]
    return [(torch.as_tensor(o).double() - r).abs().max().item() for o, r in zip(ours, ref)]


# ------------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """{timm name: weights file} of the three random timm models, made once."""
    tmp = tmp_path_factory.mktemp('timm')
    return {f.timm: save_weights(random_timm(f.timm).state_dict(), tmp / f.timm, FORMAT[f.timm]) for f in PRETRAINED}


@pytest.fixture(scope='module', params=[f.timm for f in PRETRAINED])
def case(request, files, tmp_path_factory):
    """A family's start checkpoint made by the tool from its random timm file, and timm's reference features."""
    name = request.param
    fam = next(f for f in PRETRAINED if f.timm == name)
    tmp = tmp_path_factory.mktemp(name)
    weights, out = files[name], tmp / 'start.pt'
    sd = P.read_state_dict(weights)
    if name == CLI_FAMILY:  # over an existing file: --exist-ok replaces it
        out.write_bytes(b'an older start checkpoint')
        r = init_cli('--cfg', fam.backbone_yaml, '--weights', weights, '--out', out, '--nc', 3, '--exist-ok')
        assert r.returncode == 0, r.stdout + r.stderr
        log = r.stdout
        assert 'skipped the classifier (fc.bias, fc.weight): not part of the backbone' in log, log
        assert f'placed all {len(sd) - 2} backbone tensors' in log, log
    else:
        summary = P.init_backbone(fam.backbone_yaml, weights, out, nc=3)
        assert summary['placed'] == len(sd) - 2 and summary['skipped'] == ['fc.bias', 'fc.weight']
    ckpt = torch.load(out, map_location='cpu', weights_only=False)
    ref = timm.create_model(name, pretrained=False, features_only=True, out_indices=(2, 3, 4))
    ref.load_state_dict({k: v for k, v in sd.items() if not k.startswith('fc.')}, strict=True)
    ref.eval().double()
    g = torch.Generator().manual_seed(7)
    xs = [torch.rand(s, generator=g) for s in INPUTS]  # RGB in [0, 1], as YOLOv5 feeds it
    with torch.no_grad():
        refs = [ref(normalised(x)) for x in xs]
    model = ckpt['model'].float().eval()
    return SimpleNamespace(name=name, family=fam, weights=weights, out=out, sd=sd, ckpt=ckpt, model=model,
                           fused=copy.deepcopy(model).fuse().eval(), xs=xs, refs=refs, tmp=tmp)


# ------------------------------------------------------------------------------------------------ the transfer
def test_start_checkpoint_is_what_train_py_loads(case):
    ckpt, model = case.ckpt, case.model
    assert ckpt['epoch'] == -1 and ckpt['optimizer'] is None and ckpt['ema'] is None
    assert Path(model.yaml_file).name == case.family.backbone_yaml.name and model.yaml['nc'] == 3
    assert all(p.dtype == torch.float32 for p in ckpt['model'].parameters())  # no fp16 rounding of the weights
    info = ckpt['pretrained']
    assert info['timm'] == case.name and info['placed'] == len(case.sd) - 2
    assert info['skipped'] == ['fc.bias', 'fc.weight'] and info['source'] == str(case.weights)
    stem = model.model[0]
    assert isinstance(stem, ResNetStem)
    torch.testing.assert_close(stem.mean.flatten(), torch.tensor(P.IMAGENET_MEAN), rtol=0, atol=0)
    w = case.sd['conv1.0.weight'].double() / STD64.view(1, 3, 1, 1)
    torch.testing.assert_close(stem.conv1.conv.weight.double(), w, rtol=1e-7, atol=0)
    # the pretrained eps survives Model() (YOLOv5's initialize_weights sets 1e-3 on plain BatchNorm2d)
    bns = [m for m in model.model[:5].modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(m.eps == 1e-5 for m in bns)
    assert P.backbone_of_yaml(case.family.backbone_yaml) == P.backbone_of(model)  # the pre-build check reads it right


def test_normalisation_constants_are_timms():
    for name, tag in P.PRETRAINED_TAGS.items():
        cfg = timm.models.get_pretrained_cfg(tag)
        assert tuple(cfg.mean) == P.IMAGENET_MEAN and tuple(cfg.std) == P.IMAGENET_STD, name
    assert set(P.PRETRAINED_TAGS) == {f.timm for f in PRETRAINED}


def test_features_equal_timm_eval(case):
    """Eval mode, float32 (as trained and served) and float64, at both input shapes; then a negative control."""
    m64 = copy.deepcopy(case.model).double()
    with torch.no_grad():
        for x, ref in zip(case.xs, case.refs):
            assert min(r.abs().max().item() for r in ref) > 0.3  # O(1) features, not a trivial comparison
            e32 = max_err(P.backbone_features(case.model, x), ref)
            e64 = max_err(P.backbone_features(m64, x.double()), ref)
            assert max(e32) <= TOL and max(e64) <= TOL, (case.name, tuple(x.shape), e32, e64)
            assert max(e64) <= 1e-7, e64  # float64: only the float32 storage of the folded stem weights differs
        # negative control: 10% on one conv of the last residual branch shows at stride 32
        conv = case.model.model[4][-1].conv1.conv
        before = conv.weight.clone()
        try:
            conv.weight.mul_(1.1)
            err = max_err(P.backbone_features(case.model, case.xs[0]), case.refs[0])
        finally:
            conv.weight.copy_(before)
    assert err[2] > 1e-3 and err[0] <= TOL, err


def test_features_equal_timm_fused(case):
    fused = case.fused  # Model.fuse(): every Conv+BN folded
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.model[:5].modules())
    with torch.no_grad():
        for x, ref in zip(case.xs, case.refs):
            err = max_err(P.backbone_features(fused, x), ref)
            assert max(err) <= TOL, (case.name, tuple(x.shape), err)


def test_features_equal_timm_onnx(case):
    net = BackboneOnly(case.fused).eval()  # fused, as export.py exports
    path = case.tmp / 'backbone.onnx'
    axes = {0: 'b', 2: 'h', 3: 'w'}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(net, torch.zeros(1, 3, 64, 64), str(path), opset_version=17, dynamo=False,
                          input_names=['x'], output_names=['p3', 'p4', 'p5'],
                          dynamic_axes={'x': axes, 'p3': axes, 'p4': axes, 'p5': axes})
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(path), so, providers=['CPUExecutionProvider'])
    for x, ref in zip(case.xs, case.refs):
        err = max_err(sess.run(None, {'x': x.numpy()}), ref)
        assert max(err) <= TOL, (case.name, tuple(x.shape), err)


def test_fold_is_exact_at_the_borders():
    """The stem's first conv on ``x - mean`` with weights / std equals timm's conv on ``(x - mean) / std`` at every
    position, border rows and columns included; folding the mean into a bias instead is wrong exactly there."""
    torch.manual_seed(0)
    stem = ResNetStem(3).double().eval()
    w = stem.conv1.conv.weight.detach().clone()  # the pretrained weights, which expect a normalised input
    x = torch.rand(2, 3, 31, 40, dtype=torch.float64)
    want = F.conv2d(normalised(x), w, stride=2, padding=1)  # timm: normalise, then zero-pad
    P.fold_normalisation(stem)
    with torch.no_grad():
        got = stem.conv1.conv(x - stem.mean)
        ws = w / STD64.view(1, 3, 1, 1)
        bias = -(ws * MEAN64.view(1, 3, 1, 1)).sum((1, 2, 3))
        naive = F.conv2d(x, ws, bias, stride=2, padding=1)
    assert (got - want).abs().max().item() <= 1e-12
    window = F.conv2d(torch.ones(1, 1, *x.shape[2:]), torch.ones(1, 1, 3, 3), stride=2, padding=1)
    border = (window < 9).expand_as(want)  # outputs whose 3x3 window covers padding: first row/column, last row
    assert border.any() and not border.all()
    assert (naive - want)[~border].abs().max().item() <= 1e-12
    assert (naive - want)[border].abs().max().item() > 1e-2


# ------------------------------------------------------------------------------------------- refused checkpoints
def test_other_architecture_is_refused_by_the_cli(tmp_path):
    """A resnet18 state dict for the Res2Net YAML: exit status 2, one message (file, expected, found), no output."""
    weights = save_weights(timm.create_model('resnet18', pretrained=False).state_dict(), tmp_path / 'r18', 'pth')
    out = tmp_path / 'start.pt'
    res2 = next(f for f in PRETRAINED if f.timm == 'res2net50d')
    r = init_cli('--cfg', res2.backbone_yaml, '--weights', weights, '--out', out)
    assert r.returncode == 2, r.stdout + r.stderr
    err = r.stderr
    assert 'Traceback' not in err and str(weights) in err and 'not a timm res2net50d checkpoint' in err, err
    assert 'expected Bottle2neck (Res2Net); found basic block (ResNet-18/34 style)' in err, err
    assert 'expected 3-4-6-3; found 2-2-2-2' in err and 'single-conv stem' in err, err
    assert not out.exists() and not list(tmp_path.glob('.start.pt*'))


def test_other_family_is_refused_before_writing(files, tmp_path):
    """resnest50d's weights for the ResNet-RS YAML (same stem and depths: the blocks differ)."""
    out = tmp_path / 'start.pt'
    rs = next(f for f in PRETRAINED if f.timm == 'resnetrs50')
    with pytest.raises(P.BackboneWeightsError) as e:
        P.init_backbone(rs.backbone_yaml, files['resnest50d'], out)
    msg = str(e.value)
    assert str(files['resnest50d']) in msg and 'not a timm resnetrs50 checkpoint' in msg
    assert 'expected SE bottleneck (ResNet-RS / SE-ResNet); found split-attention bottleneck (ResNeSt)' in msg
    assert 'expected a 3x3 stride-2 conv (maxpool.0); found max-pool (no weights)' in msg
    assert not out.exists() and not list(tmp_path.iterdir())
    with pytest.raises(P.BackboneWeightsError, match='yolov5s-rs.yaml: no pretrained-backbone layout'):
        P.init_backbone(ROOT / 'models_yaml' / 'yolov5s-rs.yaml', files['resnetrs50'], out)  # not a backbone YAML
    assert not out.exists()


def test_altered_state_dicts_are_refused_naming_the_tensor(case):
    """Every tensor placed or named: an extra tensor, a missing one, a reshaped one; the model is left untouched."""
    model = copy.deepcopy(case.model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    extra = dict(case.sd, **{'layer2.1.extra.weight': torch.zeros(3)})
    missing = {k: v for k, v in case.sd.items() if k != 'layer3.2.conv1.weight'}
    bad = dict(case.sd, **{'layer1.0.conv3.weight': case.sd['layer1.0.conv3.weight'][:, :-1]})
    beyond = dict(case.sd, **{'layer5.0.conv1.weight': torch.zeros(1)})
    for sd, text in ((extra, 'tensor layer2.1.extra.weight (3,) has no place'),
                     (beyond, 'stages: expected 3-4-6-3; found 3-4-6-3-1'),
                     (missing, 'no tensor for 1 backbone entries of yolov5m-'),
                     (bad, 'tensor layer1.0.conv3.weight has shape')):
        with pytest.raises(P.BackboneWeightsError, match=re.escape(text)):
            P.load_backbone(model, sd, source='x.pth')
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    # BN counters are not needed: a file without them (some converted checkpoints) loads
    counters = {k: v for k, v in case.sd.items() if not k.endswith('num_batches_tracked')}
    assert len(counters) < len(case.sd)
    assert P.load_backbone(model, counters)['placed'] == len(counters) - 2


def test_output_that_would_overwrite_an_input_is_refused(tmp_path):
    """--out equal to --weights: exit status 2 before the file is read, the input unchanged; likewise in Python."""
    weights = tmp_path / 'r.pth'
    torch.save({'conv1.weight': torch.zeros(1)}, weights)
    before = weights.read_bytes()
    res2 = next(f for f in PRETRAINED if f.timm == 'res2net50d')
    r = init_cli('--cfg', res2.backbone_yaml, '--weights', weights, '--out', weights, '--exist-ok')
    assert r.returncode == 2, r.stdout + r.stderr
    assert 'Traceback' not in r.stderr and f'is the input {weights}' in r.stderr, r.stderr
    assert weights.read_bytes() == before and sorted(tmp_path.iterdir()) == [weights]
    with pytest.raises(OutputPathError, match='writing it would destroy the input'):
        P.init_backbone(res2.backbone_yaml, weights, weights, exist_ok=True)
    assert weights.read_bytes() == before


def test_output_directory_or_existing_file_is_refused_before_any_work(tmp_path):
    """--out a directory, or an existing file without --exist-ok: exit status 2 naming --out, checked before the
    weights file is read (here not a weights file at all, so any later check would fail on it instead)."""
    weights = tmp_path / 'notes.pth'
    weights.write_text('not a tensor file')
    res2 = next(f for f in PRETRAINED if f.timm == 'res2net50d')
    folder = tmp_path / 'runs'
    folder.mkdir()
    r = init_cli('--cfg', res2.backbone_yaml, '--weights', weights, '--out', folder)
    assert r.returncode == 2 and f'output {folder} is a directory' in r.stderr, r.stdout + r.stderr
    assert 'tensor file' not in r.stderr and not list(folder.iterdir())
    old = tmp_path / 'start.pt'
    old.write_bytes(b'a start checkpoint from before')
    r = init_cli('--cfg', res2.backbone_yaml, '--weights', weights, '--out', old)
    assert r.returncode == 2, r.stdout + r.stderr
    assert f'output {old} exists' in r.stderr and '--exist-ok' in r.stderr and 'tensor file' not in r.stderr
    assert old.read_bytes() == b'a start checkpoint from before'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['notes.pth', 'runs', 'start.pt']  # no temporary left


def test_the_library_prints_nothing_and_has_no_command_line():
    """extensions/pretrained.py is a library: no print, no argparse, no main (scripts/init_backbone.py is the CLI)."""
    tree = ast.parse(Path(P.__file__).read_text())
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    imported = {a.name.split('.')[0] for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in n.names} | {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert 'print' not in calls and not {'argparse', 'sys'} & imported and not hasattr(P, 'main')


def test_timm_remaps_live_with_their_families():
    """Every family with a timm model has a stage block whose remap (timm_keys, beside it in the family's module)
    the registry finds; the remap keys are relative to a block and the marker tells it apart."""
    stages = P.stage_blocks()
    for fam in PRETRAINED:
        own = [s for s in stages.values() if s.family == fam.key]
        assert len(own) == 1, (fam.key, list(stages))
        cls = own[0].module
        assert cls.__module__ == f'extensions.{fam.module}' and P.timm_model(own[0]) == fam.timm
        assert all(k.endswith('.') and not k.startswith('layer') for k in cls.timm_keys), cls.timm_keys
        assert cls.timm_block and all(any(k.startswith(m) for k in cls.timm_keys) for m in cls.timm_marker)


def test_non_state_dict_files_are_refused(tmp_path):
    yolo = tmp_path / 'yolo.pt'
    torch.save({'model': nn.Conv2d(1, 1, 1), 'epoch': -1}, yolo)  # pickles a module: refused by weights_only
    text = tmp_path / 'notes.pth'
    text.write_text('not a tensor file')
    empty = tmp_path / 'empty.pth'
    torch.save({}, empty)
    for f, msg in ((yolo, 'cannot be read as a tensor file'), (text, 'cannot be read as a tensor file'),
                   (empty, 'not a state dict of tensors'), (tmp_path / 'absent.pth', 'no such file')):
        with pytest.raises(P.BackboneWeightsError, match=msg) as e:
            P.read_state_dict(f)
        assert str(f) in str(e.value)


# ------------------------------------------------------------------------------------------------------- freezing
def test_frozen_stage_keeps_its_bn_statistics():
    """--freeze sets requires_grad=False; train() then keeps the layer's BN in eval mode (ImageNet statistics)."""
    stage = Res2NetStage(16, 64, 2, 2)
    x = torch.randn(2, 16, 16, 16)
    stage.train()
    assert all(m.training for m in stage.modules())
    for p in stage.parameters():
        p.requires_grad = False
    stage.train()
    bns = [m for m in stage.modules() if isinstance(m, nn.BatchNorm2d)]
    assert not any(m.training for m in bns) and stage.training
    mean = bns[0].running_mean.clone()
    stage(x)
    assert torch.equal(bns[0].running_mean, mean)
    next(stage.parameters()).requires_grad = True  # partly trainable: YOLOv5's ordinary train mode
    stage.train()
    assert all(m.training for m in bns)


# ------------------------------------------------------------------------------------------------- end to end
@pytest.mark.e2e
@pytest.mark.parametrize('case', [CLI_FAMILY], indirect=True)  # one family end to end (CPU budget)
def test_train_val_detect_export_from_the_start_checkpoint(case):
    """train.py --weights <start.pt> --freeze 5: every entry but the anchors is transferred, the backbone (BN
    statistics too) stays as loaded; then val.py, detect.py and export.py --include onnx on the result."""
    env = nonet_env(case.tmp)
    data = ensure_shapes(case.tmp / 'tiny', img=64, train=8, val=4, seed=5, classes=3, verbose=False)
    project = case.tmp / 'runs'
    _, out = run_yolo('train.py', '--weights', case.out, '--cfg', case.family.backbone_yaml, '--data', data,
                      '--img', 64, '--epochs', 1, '--batch-size', 4, '--workers', 0, '--noplots', '--freeze', 5,
                      '--device', 'cpu', '--project', project, '--name', 'train', env=env)
    got, total = map(int, re.search(r'Transferred (\d+)/(\d+) items', out).groups())
    start = case.ckpt['model'].state_dict()
    backbone = [k for k in start if k.startswith(tuple(f'model.{i}.' for i in range(5)))]
    assert got == total - 1 and got >= len(backbone), out[-3000:]  # all but Detect's anchors (train.py excludes)
    assert len(backbone) == case.ckpt['pretrained']['placed'] + 1  # the timm tensors and the stem's mean
    last = project / 'train' / 'weights' / 'last.pt'
    trained = torch.load(last, map_location='cpu', weights_only=False)['model'].float().state_dict()
    for k in backbone:  # frozen: parameters and BN statistics as loaded (up to the checkpoint's fp16)
        torch.testing.assert_close(trained[k], start[k].to(trained[k].dtype), rtol=2e-3, atol=1e-5, msg=k)
    run_yolo('val.py', '--weights', last, '--data', data, '--img', 64, '--device', 'cpu',
             '--project', project, '--name', 'val', env=env)
    images = data.parent / 'images' / 'val'
    run_yolo('detect.py', '--weights', last, '--source', images, '--img', 64, '--device', 'cpu',
             '--project', project, '--name', 'detect', env=env)
    assert len(list((project / 'detect').glob('*.jpg'))) == len(list(images.glob('*.jpg')))
    run_yolo('export.py', '--weights', last, '--include', 'onnx', '--img', 64, '--device', 'cpu', env=env)
    assert last.with_suffix('.onnx').stat().st_size > 1e6
