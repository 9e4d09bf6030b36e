"""The block-vs-timm timing part (extensions.benchmark.reference, scripts/dev/blocks_vs_timm.py) on tiny inputs:
well-formed results on CPU, bad settings refused, the CUDA path only where a GPU is."""

import math
import sys

import blocks_vs_timm  # scripts/dev/blocks_vs_timm.py
import pytest
import torch

from extensions.families import FAMILIES
from extensions.pretrained import stage_blocks, timm_model

pytest.importorskip('timm')  # test-only dependency (requirements.txt)
from extensions.benchmark import reference as R
from extensions.benchmark.settings import BlocksSettings

pytestmark = pytest.mark.usefixtures('one_thread')
TINY = dict(width=64, block_size=8, image_size=64, stages=(2,), train_batch=2, pairs=2, warmup=0)


@pytest.mark.parametrize('fam', FAMILIES, ids=lambda f: f.key)
def test_family_cases_run_and_are_well_formed(fam):
    if fam.key not in R.families(BlocksSettings(**TINY)):  # no block or stage with a timm counterpart
        with pytest.raises(ValueError, match=f"unknown '{fam.key}'"):
            R.run(BlocksSettings(only=(fam.key,), **TINY))
        return
    s = BlocksSettings(only=(fam.key,), **TINY)
    rep = R.run(s)
    assert rep.device == 'CPU' and rep.threads >= 1
    kinds = {c.kind for c in rep.cases}
    assert kinds == {'block', 'stage'} and all(c.family == fam.key for c in rep.cases)
    assert any(c.name == f'{fam.timm} layer2' for c in rep.cases)
    for c in rep.cases:
        assert c.max_abs_diff <= 1e-3 and len(c.input_shape) == 3
        assert [p.name for p in c.passes] == list(R.PASSES)
        for p in c.passes:
            assert p.ours_ms > 0 and p.timm_ms > 0 and p.pairs == 2
            assert p.batch == (s.infer_batch if p.name == 'inference' else s.train_batch)
            assert math.isfinite(p.ratio) and p.ratio_q1 <= p.ratio <= p.ratio_q3
        assert c.ratio('training') == c.passes[1].ratio
    assert all(r[2] > 1.0 for r in rep.slower(1.0))
    assert {(c, p) for c, p, _ in rep.above()} <= {(c, p) for c, p, _ in rep.slower(1.0)}  # q1 > 1 implies median > 1


def test_case_selection():
    names = R.cases(BlocksSettings(**TINY))
    assert 'SplitAttention' in names and 'Bottle2neck stage s2' in names
    stages = [f'{timm_model(b)} layer2' for b in stage_blocks().values()]
    assert [n for n in names if 'layer' in n] == stages and len(stages) >= 3
    assert {'res2', 'resnest', 'serd'} <= set(R.families(BlocksSettings(**TINY)))
    assert R.cases(BlocksSettings(**{**TINY, 'stages': ()}, only=('SplitAttention',))) == ['SplitAttention']


@pytest.mark.parametrize('bad, word', [
    (dict(pairs=0), 'pairs'), (dict(width=100), 'width'), (dict(stages=(5,)), 'stages'),
    (dict(image_size=100), 'image_size'), (dict(warmup=-1), 'warmup'), (dict(device='tpu'), 'device'),
    (dict(only=('nope',)), 'nope'), (dict(threads=0), 'threads'), (dict(clock='gpu'), 'clock')])
def test_bad_settings_raise_naming_the_setting(bad, word):
    with pytest.raises(ValueError, match=word):
        R.run(BlocksSettings(**{**TINY, **bad}))


def test_settings_are_frozen_tuples_and_take_a_gpu_index():
    s = BlocksSettings(stages=[2, 3], only=['res2'], device='0')
    assert s.stages == (2, 3) and s.only == ('res2',) and s.device == 'cuda:0'
    with pytest.raises(AttributeError):
        s.pairs = 3  # frozen
    with pytest.raises(ValueError, match='clock'):
        BlocksSettings(device='cuda', clock='cpu')


def test_unmapped_timm_key_raises():
    with pytest.raises(KeyError, match='extra.weight'):
        R._mapped({'extra.weight': torch.zeros(1)}, {'conv1.': 'conv1.conv.'}, False)


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the refusal without a GPU')
def test_cuda_without_gpu_is_refused():
    with pytest.raises(ValueError, match='no CUDA device'):
        R.run(BlocksSettings(device='cuda', **TINY))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA device')
def test_cuda_amp_path():
    rep = R.run(BlocksSettings(device='cuda', only=('SplitAttention',), **{**TINY, 'stages': ()}))
    assert rep.device != 'CPU' and rep.cases[0].passes[1].ours_ms > 0 and 'autocast' in rep.notes[0]


def test_cli_prints_the_table(capsys):
    args = ['--clock', 'cpu', '--threads', '1', '--width', '64', '--block-size', '8', '--no-stages',
            '--train-batch', '2', '--pairs', '1', '--warmup', '0', '--only', 'SplitAttention']
    assert blocks_vs_timm.main(args) == 0
    out = capsys.readouterr().out
    assert 'SplitAttention' in out and 'ours/timm' in out and 'training' in out
    assert blocks_vs_timm.main(args[:-2] + ['--only', 'nope']) == 1
    assert 'nope' in capsys.readouterr().err
    sys.modules.pop('blocks_vs_timm', None)
