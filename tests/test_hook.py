"""The parse_model hook: the registry alone decides how an extension block is built from YAML."""

import subprocess
import sys
import textwrap
from copy import deepcopy

import pytest
import torch
import torch.nn as nn
import yaml
from conftest import BASE
from e2e_utils import with_pythonpath
from models.common import Conv
from models.yolo import Model
from utils.torch_utils import de_parallel

from extensions import registry
from extensions.registry import ModelConfigError, register, unregister

PLAIN_S = yaml.safe_load((BASE / 'models' / 'yolov5s.yaml').read_text())


class ProbeBlock(nn.Module):
    """A test-only C3-like block: records how parse_model called it."""

    def __init__(self, c1, c2, n=1, tag='x'):
        super().__init__()
        self.c1, self.c2, self.n, self.tag = c1, c2, n, tag
        self.m = nn.Sequential(Conv(c1, c2, 1), *(Conv(c2, c2, 3) for _ in range(n)))

    def forward(self, x):
        return self.m(x)


class KeepBlock(nn.Module):
    """A test-only block that keeps its input channels (registered with out=same)."""

    def __init__(self, c1, c2, k=3):
        super().__init__()
        assert c1 == c2
        self.cv = Conv(c1, c2, k)

    def forward(self, x):
        return self.cv(x)


@pytest.fixture()
def probe_blocks():
    register(ProbeBlock, repeats=True, family='test')
    register(KeepBlock, out=registry.same, family='test')
    yield
    unregister('ProbeBlock')
    unregister('KeepBlock')


def yaml_with(layer_2, gw, extra_after=None):
    d = deepcopy(PLAIN_S)
    d['width_multiple'], d['depth_multiple'] = gw, 0.33
    d['backbone'][2] = layer_2  # replaces [-1, 3, C3, [128]]
    if extra_after:
        d['backbone'].insert(3, extra_after)
        # keep the head's from-indices valid: shift every index > 2 by one
        for layer in d['head']:
            f = layer[0]
            layer[0] = [x + 1 if x > 2 else x for x in f] if isinstance(f, list) else (f + 1 if f > 2 else f)
    return d


@pytest.mark.parametrize('gw', [0.25, 1.0])
def test_registry_sets_channels_and_repeats(probe_blocks, gw):
    model = Model(yaml_with([-1, 3, 'ProbeBlock', [128, 'y']], gw), ch=3, nc=4)
    block = model.model[2]
    expected_c1 = model.model[1].conv.out_channels
    assert isinstance(block, ProbeBlock)
    assert block.c1 == expected_c1
    assert block.c2 == {0.25: 32, 1.0: 128}[gw]  # make_divisible(128 * gw, 8)
    assert block.n == 1 and block.tag == 'y'  # n = max(round(3 * 0.33), 1) = 1 inserted as 3rd argument
    assert model.model[3].conv.in_channels == block.c2  # the next layer was told the block's channels
    out = model(torch.zeros(1, 3, 64, 96))
    assert [tuple(o.shape[2:4]) for o in out] == [(8, 12), (4, 6), (2, 3)]  # train mode: (b, na, ny, nx, no)


def test_registry_same_rule_keeps_channels(probe_blocks):
    model = Model(yaml_with([-1, 3, 'ProbeBlock', [128]], 0.5, extra_after=[-1, 1, 'KeepBlock', [5]]), ch=3, nc=4)
    keep = model.model[3]
    assert isinstance(keep, KeepBlock)
    assert keep.cv.conv.in_channels == keep.cv.conv.out_channels == model.model[2].c2 == 64
    assert keep.cv.conv.kernel_size == (5, 5)  # YAML args pass through after (c1, c2)


def test_unknown_module_names_layer_and_known_blocks(tmp_path):
    bad = deepcopy(PLAIN_S)
    bad['backbone'][4] = [-1, 6, 'C3_Res2Blok', [256]]
    f = tmp_path / 'typo.yaml'
    f.write_text(yaml.safe_dump(bad))
    with pytest.raises(ModelConfigError) as e:
        Model(str(f))
    msg = str(e.value)
    assert 'typo.yaml' in msg and 'layer 4' in msg and "unknown module 'C3_Res2Blok'" in msg
    for name in registry.registered():
        assert name in msg  # the list of known extension blocks


def test_first_argument_must_be_channels(probe_blocks):
    with pytest.raises(ModelConfigError, match=r"layer 2 \(ProbeBlock\): first argument must be the output channels"):
        Model(yaml_with([-1, 3, 'ProbeBlock', ['wide']], 1.0))


def test_checkpoint_with_extension_block_loads_in_fresh_process_from_elsewhere(tmp_path):
    """Saved as train.py saves it (pickled model, half precision), loaded by attempt_load in a new process."""
    d = deepcopy(PLAIN_S)
    ext_name = sorted(n for n, s in registry.registered().items() if s.repeats and s.family != 'test')[0]
    d['backbone'][2] = [-1, 1, ext_name, [128]]
    model = Model(d, ch=3, nc=3).eval()
    ckpt = {'epoch': 0, 'best_fitness': None, 'model': deepcopy(de_parallel(model)).half(), 'ema': None,
            'updates': None, 'optimizer': None, 'opt': {}, 'git': None, 'date': 'test'}
    weights = tmp_path / 'weights' / 'best.pt'
    weights.parent.mkdir()
    torch.save(ckpt, weights)
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    code = textwrap.dedent(f"""
        import torch
        from models.experimental import attempt_load
        m = attempt_load({str(weights)!r}, device=torch.device('cpu'), fuse=False)
        print(type(m.model[2]).__module__ + '.' + type(m.model[2]).__name__)
        print(sum(p.numel() for p in m.parameters()))
    """)
    r = subprocess.run([sys.executable, '-c', code], cwd=elsewhere, env=with_pythonpath(BASE), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    cls, nparams = r.stdout.split()[-2:]
    assert cls == f'{registry.registered()[ext_name].module.__module__}.{ext_name}'
    assert int(nparams) == sum(p.numel() for p in model.parameters())
