"""The family table (extensions/families.py) is the one list of block families: the registry, the YAMLs, the
benchmark and the tests' parametrisation all follow it.

The end-to-end test adds a throwaway fourth family to a copy of the repository exactly as README "Adding a block
family" says (the module and the row are taken from the README; one module, one table row, its YAMLs) and sees it
built from YAML, benchmarked by ``scripts/benchmark.py --quick --cfg ...`` and passing every family-parametrised test
of the suite (``pytest -k <key>``: YAMLs, blocks, ONNX, OpenVINO, TorchScript, training), with no other file edited;
it declares no TensorFlow twin, and the TensorFlow export test skips it saying so.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

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
def readme_recipe() -> tuple[str, str]:
    """The module and the table row that README "Adding a block family" tells an author to write, as written there."""
    text = (ROOT / 'README.md').read_text()
    section = text[text.index('## Adding a block family'):]
    section = section[:section.index('\n## ')]
    module, row = (textwrap.dedent(b) for b in re.findall(r'^ *```python\n(.*?)^ *```', section, re.M | re.S))
    return module, row.strip()


def copy_repository(dest: Path) -> Path:
    """The overlay with its set-up base, as a clone would hold it after setup (no runs, datasets or caches)."""
    skip = shutil.ignore_patterns('__pycache__', 'runs', '.pytest_cache', '.hypothesis')
    for name in ('extensions', 'models_yaml', 'scripts', 'tests', 'patches'):
        shutil.copytree(ROOT / name, dest / name, ignore=skip)
    shutil.copytree(BASE, dest / 'yolov5', ignore=skip)
    for name in ('pytest.ini', 'requirements.txt', 'ruff.toml'):
        shutil.copy2(ROOT / name, dest / name)
    return dest


def add_family(repo: Path, module: str, row: str) -> SimpleNamespace:
    """The three steps of README "Adding a block family", and nothing else; returns the row's key, module and C3."""
    f = SimpleNamespace(**dict(re.findall(r"(key|module|c3|suffix)='(\w+)'", row)))
    (repo / 'extensions' / f'{f.module}.py').write_text(module)  # 1. the module
    table = repo / 'extensions' / 'families.py'
    text = table.read_text()
    start = text.index('FAMILIES = (')
    end = text.index('\n)\n', start) + 1
    table.write_text(text[:end] + f'    {row}\n' + text[end:])  # 2. one row at the end of FAMILIES
    for scale in SCALES:  # 3. its YAMLs: upstream's with every C3 swapped
        src = (BASE / 'models' / f'yolov5{scale}.yaml').read_text()
        (repo / 'models_yaml' / f'yolov5{scale}-{f.suffix}.yaml').write_text(re.sub(r'\bC3\b', f.c3, src))
    return f


def run(repo: Path, *args, timeout=900) -> str:
    r = subprocess.run([sys.executable, *map(str, args)], cwd=repo, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f'{args} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}'
    return r.stdout + r.stderr


def junit(path: Path) -> dict:
    """``{'<test file>::<test id>': (outcome, message)}`` from pytest's --junitxml report."""
    out = {}
    for case in ET.parse(path).getroot().iter('testcase'):
        name = f'{case.get("classname").rsplit(".", 1)[-1]}.py::{case.get("name")}'
        bad = case.find('failure') if case.find('failure') is not None else case.find('error')
        skip = case.find('skipped')
        out[name] = (('failed', bad.get('message', '')) if bad is not None else
                     ('skipped', skip.get('message', '')) if skip is not None else ('passed', ''))
    return out


def test_readme_recipe_uses_public_modules_only():
    module, row = readme_recipe()
    imports = re.findall(r'^(?:from|import) (\S+)', module, re.M)
    assert imports and not [m for m in imports if re.search(r'(^|\.)_', m)], imports  # no extensions._args etc.
    assert '.layers' in imports and row.startswith('Family(key=')


@pytest.mark.e2e
def test_a_fourth_family_is_one_module_one_row_and_its_yamls(tmp_path):
    """README's recipe in a copy of the repository: the new family builds, is benchmarked, and every
    family-parametrised test of the suite (selected with -k <key>) passes on it, deploy tests included; the
    TensorFlow export test skips it for the reason it declares (no twin)."""
    repo = copy_repository(tmp_path / 'repo')
    toy = add_family(repo, *readme_recipe())

    out = run(repo, 'yolov5/models/yolo.py', '--cfg', f'models_yaml/yolov5n-{toy.suffix}.yaml')
    assert out.count(f'extensions.{toy.module}.{toy.c3}') == 8, out[-3000:]  # every C3 of the v6.0 layout
    out = run(repo, '-c', f"from extensions import registry; print(registry.registered()['{toy.c3}'].family)")
    assert out.strip().splitlines()[-1] == toy.key

    bench = tmp_path / 'bench'
    run(repo, 'scripts/benchmark.py', '--quick', '--cfg', f'models_yaml/yolov5n-{toy.suffix}.yaml', '--img', '160',
        '--runs', '3', '--threads', '1', '--train-img', '160', '--train-batch', '2', '--out', bench)
    models = {m['name']: m for m in json.loads((bench / 'benchmark.json').read_text())['models']}
    name = f'yolov5n-{toy.suffix}'
    assert set(models) == {'yolov5n', name}, set(models)
    assert models[name]['family'] == toy.key
    assert name in (bench / 'benchmark.md').read_text()

    report = tmp_path / 'junit.xml'
    this = 'tests/test_families.py::test_a_fourth_family_is_one_module_one_row_and_its_yamls'
    run(repo, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-k', toy.key, '--deselect', this,
        '--junitxml', report, 'tests', timeout=2400)
    results = junit(report)
    expected = [f'test_yamls.py::test_builds_and_stays_in_band[yolov5{s}-{toy.suffix}]' for s in SCALES] + [
        f'test_e2e.py::test_every_yaml_trains_from_scratch[yolov5{s}-{toy.suffix}]' for s in SCALES] + [
        f'test_yamls.py::test_onnx_dynamic[yolov5n-{toy.suffix}-12]',
        f'test_yamls.py::test_fused_equals_unfused[yolov5s-{toy.suffix}]',
        f'test_families.py::test_row_matches_its_module_registry_and_yamls[{toy.key}]',
        f'test_blocks.py::test_no_print_in_blocks[{toy.module}]',
        f'test_deploy_openvino.py::test_openvino_export_layout_and_numbers_match_onnx[{toy.key}]',
        f'test_deploy_openvino.py::test_detect_and_val_run_the_export[openvino-{toy.key}]',
        f'test_deploy_openvino.py::test_detect_and_val_run_the_export[torchscript-{toy.key}]',
        f'test_deploy_tf.py::test_registered_block_has_a_twin_or_declares_none[{toy.c3}]']
    assert not [t for t in expected if results.get(t, ('missing',))[0] != 'passed'], results
    skipped = {t: msg for t, (outcome, msg) in results.items() if outcome == 'skipped'}
    tflite = f'test_deploy_tf.py::test_tflite_fp32_and_fp16_match_pytorch[yolov5n-{toy.suffix}]'
    assert list(skipped) == [tflite], skipped
    assert f'extensions.{toy.module}.{toy.c3} declares no TensorFlow twin' in skipped[tflite], skipped
