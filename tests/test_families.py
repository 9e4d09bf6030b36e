"""The family table (extensions/families.py) is the one list of block families: the registry, the YAMLs, the
benchmark and the tests' parametrisation all follow it.

The end-to-end test adds a throwaway fourth family to a copy of the repository exactly as README "Adding a block
family" says (one module, one table row, its YAMLs) and sees it built from YAML, benchmarked by
``scripts/benchmark.py --quick --cfg ...`` and parametrised in the YAML tests, with no other file edited.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import BASE, ROOT

from extensions import registry
from extensions.families import FAMILIES, SCALES, by_key, of_module, of_suffix


@pytest.mark.parametrize('family', FAMILIES, ids=[f.key for f in FAMILIES])
def test_row_matches_its_module_registry_and_yamls(family):
    module = importlib.import_module(f'extensions.{family.module}')
    reg = registry.registered()
    assert reg[family.c3].repeats and reg[family.c3].module.__module__ == module.__name__
    own = {name for name, spec in reg.items() if spec.module.__module__ == module.__name__}
    assert own and all(reg[name].family == family.key for name in own), {n: reg[n].family for n in own}
    for scale in SCALES:  # every scale exists and swaps all eight C3s of the v6.0 layout for the family's C3
        d = yaml.safe_load(family.yaml(scale).read_text())
        modules = [m for _, _, m, _ in d['backbone'] + d['head']]
        assert modules.count(family.c3) == 8 and 'C3' not in modules, (family.yaml(scale), modules)
    assert by_key(family.key) is family and of_module(module.__name__) is family
    assert of_suffix(family.suffix) is family and all(of_suffix(v) is family for v in family.variants)


def test_every_registered_block_belongs_to_a_family():
    families = {f.key for f in FAMILIES}
    strays = {n: s.family for n, s in registry.registered().items()
              if s.module.__module__.startswith('extensions.') and s.family not in families}
    assert not strays, strays


def test_unknown_family_key_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown block family 'nope': expected one of res2, "):
        by_key('nope')
    assert of_suffix('nope') is None and of_module('extensions.nope') is None


# ----------------------------------------------------------------------------------------- a fourth family
TOY_MODULE = '''"""A throwaway block family: YOLOv5's own bottleneck, registered through the family mechanism."""

from models.common import Bottleneck

from ._layers import C3Blocks
from .registry import register


@register(repeats=True)
class C3_Toy(C3Blocks):
    """C3 with YOLOv5 Bottlenecks, built by the family machinery."""

    def __init__(self, c1, c2, n=1, shortcut=True, g=1, e=0.5):
        super().__init__('C3_Toy', c1, c2, n, shortcut, e, lambda c: Bottleneck(c, c, shortcut, g, e=1.0))
'''
TOY_ROW = "    Family(key='toy', module='toy', title='Toy', paper='none (a test family)', c3='C3_Toy', suffix='toy'),\n"


def copy_repository(dest: Path) -> Path:
    """The overlay with its set-up base, as a clone would hold it after setup (no runs, datasets or caches)."""
    skip = shutil.ignore_patterns('__pycache__', 'runs', '.pytest_cache', '.hypothesis')
    for name in ('extensions', 'models_yaml', 'scripts', 'tests', 'patches'):
        shutil.copytree(ROOT / name, dest / name, ignore=skip)
    shutil.copytree(BASE, dest / 'yolov5', ignore=skip)
    for name in ('pytest.ini', 'requirements.txt', 'ruff.toml'):
        shutil.copy2(ROOT / name, dest / name)
    return dest


def add_toy_family(repo: Path) -> None:
    """The three steps of README "Adding a block family", and nothing else."""
    (repo / 'extensions' / 'toy.py').write_text(TOY_MODULE)  # 1. the module
    table = repo / 'extensions' / 'families.py'
    text = table.read_text()
    start = text.index('FAMILIES = (')
    end = text.index('\n)\n', start) + 1
    table.write_text(text[:end] + TOY_ROW + text[end:])  # 2. one row at the end of FAMILIES
    for scale in SCALES:  # 3. its YAMLs: upstream's with every C3 swapped
        src = (BASE / 'models' / f'yolov5{scale}.yaml').read_text()
        (repo / 'models_yaml' / f'yolov5{scale}-toy.yaml').write_text(re.sub(r'\bC3\b', 'C3_Toy', src))


def run(repo: Path, *args, timeout=900) -> str:
    r = subprocess.run([sys.executable, *map(str, args)], cwd=repo, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f'{args} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}'
    return r.stdout + r.stderr


@pytest.mark.e2e
def test_a_fourth_family_is_one_module_one_row_and_its_yamls(tmp_path):
    repo = copy_repository(tmp_path / 'repo')
    add_toy_family(repo)

    out = run(repo, 'yolov5/models/yolo.py', '--cfg', 'models_yaml/yolov5n-toy.yaml')
    assert out.count('extensions.toy.C3_Toy') == 8, out[-3000:]  # every C3 of the v6.0 layout
    out = run(repo, '-c', "from extensions import registry; print(registry.registered()['C3_Toy'].family)")
    assert out.strip().splitlines()[-1] == 'toy'

    bench = tmp_path / 'bench'
    run(repo, 'scripts/benchmark.py', '--quick', '--cfg', 'models_yaml/yolov5n-toy.yaml', '--img', '160',
        '--runs', '3', '--threads', '1', '--train-img', '160', '--train-batch', '2', '--out', bench)
    models = {m['name']: m for m in json.loads((bench / 'benchmark.json').read_text())['models']}
    assert set(models) == {'yolov5n', 'yolov5n-toy'}, set(models)
    assert models['yolov5n-toy']['family'] == 'toy'
    assert 'yolov5n-toy' in (bench / 'benchmark.md').read_text()

    out = run(repo, '-m', 'pytest', '--collect-only', '-q', '-p', 'no:cacheprovider', 'tests/test_yamls.py',
              'tests/test_families.py')
    for scale in SCALES:  # the YAML tests and the table tests pick the new family up
        assert f'test_builds_and_stays_in_band[yolov5{scale}-toy]' in out, out[-3000:]
    assert 'test_row_matches_its_module_registry_and_yamls[toy]' in out
    assert 'test_onnx_dynamic[yolov5n-toy-12]' in out  # the heavy checks at the n and s scales
