"""Checkpoints saved before the blocks moved into one module per family still load and compute the same.

tests/data/legacy-all-blocks.pt was written by ``torch.save`` when every block lived in extensions/blocks.py, so
its pickle names ``extensions.blocks.<Class>`` for all fourteen block classes (tests/data/legacy-all-blocks.yaml
holds each registered block once). ``extensions.blocks`` re-exports them from the family modules.
"""

from __future__ import annotations

import json
import pickletools
import subprocess
import sys
import zipfile

from conftest import BASE, ROOT

DATA = ROOT / 'tests' / 'data'
CKPT = DATA / 'legacy-all-blocks.pt'


def pickled_globals(path) -> set[str]:
    """'module.Class' of every class the checkpoint's pickle references (read without unpickling)."""
    with zipfile.ZipFile(path) as z:
        data = z.read(next(n for n in z.namelist() if n.endswith('data.pkl')))
    names, strings = set(), []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ('SHORT_BINUNICODE', 'BINUNICODE', 'UNICODE'):
            strings.append(arg)
        elif op.name == 'STACK_GLOBAL':
            names.add(f'{strings[-2]}.{strings[-1]}')
        elif op.name == 'GLOBAL':
            names.add(arg.replace(' ', '.'))
    return names


def test_checkpoint_pickles_the_old_module_path():
    ext = {n for n in pickled_globals(CKPT) if n.startswith('extensions.')}
    assert len(ext) == 14 and all(n.startswith('extensions.blocks.') for n in ext), sorted(ext)


def test_old_checkpoint_loads_in_a_fresh_process_and_computes_the_same(tmp_path):
    code = f'''
import json, torch
from models.experimental import attempt_load
model = attempt_load({str(CKPT)!r}, device='cpu', fuse=False)
exp = torch.load({str(DATA / 'legacy-all-blocks-expected.pt')!r})
with torch.no_grad():
    y = model.float().eval()(exp['input'])[0]
err = ((y - exp['output']).abs().max() / exp['output'].abs().max()).item()
mods = sorted({{type(m).__module__ + '.' + type(m).__name__ for m in model.modules()
               if type(m).__module__.startswith('extensions')}})
fused = attempt_load({str(CKPT)!r}, device='cpu', fuse=True)
with torch.no_grad():
    yf = fused.float().eval()(exp['input'])[0]
errf = ((yf - exp['output']).abs().max() / exp['output'].abs().max()).item()
print(json.dumps({{'err': err, 'fused_err': errf, 'modules': mods}}))
'''
    r = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env={'PATH': '', 'PYTHONPATH': str(BASE), 'HOME': str(tmp_path)})
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out['err'] <= 1e-6, out['err']  # the same code path and weights: equal up to float rounding
    assert out['fused_err'] <= 1e-4, out['fused_err']  # Conv+BN folded
    # the unpickled classes are the family modules' (extensions.blocks only re-exports them)
    families = {m.rsplit('.', 1)[0] for m in out['modules']}
    assert families == {'extensions._layers', 'extensions.res2net', 'extensions.resnest', 'extensions.resnet_rs'}, \
        out['modules']
