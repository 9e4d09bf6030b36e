"""Setup: the pinned base is populated and patched, idempotently, and damage is reported, never overwritten."""

import hashlib
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import setup as overlay_setup  # scripts/setup.py (scripts/ is on the test path: pytest.ini)
from conftest import BASE, ROOT

from extensions import compat
from extensions.registry import registered

MANIFEST = overlay_setup.read_manifest()
WHEEL = ROOT / '.cache' / 'base' / overlay_setup.WHEEL


def tree_digest(base: Path) -> dict:
    return {rel: hashlib.sha256((base / rel).read_bytes()).hexdigest() for rel in MANIFEST}


def run_setup(root: Path, *args):
    return subprocess.run([sys.executable, str(root / 'scripts' / 'setup.py'), '--skip-deps', *args],
                          cwd=root, capture_output=True, text=True, timeout=300)


@pytest.fixture()
def scratch_root(tmp_path):
    """A copy of the overlay (scripts, patches, requirements) with an empty yolov5/ and the cached wheel."""
    if not WHEEL.is_file():
        pytest.skip('the base was not populated from the PyPI mirror here (no cached wheel to reuse offline)')
    root = tmp_path / 'overlay'
    for name in ('scripts', 'patches', 'extensions'):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns('__pycache__'))
    shutil.copy2(ROOT / 'requirements.txt', root / 'requirements.txt')
    (root / 'yolov5').mkdir()
    (root / '.cache' / 'base').mkdir(parents=True)
    shutil.copy2(WHEEL, root / '.cache' / 'base' / WHEEL.name)
    return root


def test_every_patch_is_in_place():
    state = overlay_setup.verify_base(BASE, MANIFEST)
    assert state['missing'] == [] and state['edited'] == []
    assert state['patches'] and set(state['patches'].values()) == {'applied'}, state['patches']
    assert len(state['patches']) == len(list((ROOT / 'patches').glob('[0-9]*.diff')))


def test_patches_have_a_why_header_and_stay_small():
    for patch in overlay_setup.patch_files():
        text = patch.read_text(encoding='utf-8')
        header = text.split('diff --git', 1)[0]
        assert 'Why:' in header, f'{patch.name} has no "Why:" header'
        changed = [ln for ln in text.splitlines() if ln[:1] in '+-' and not ln.startswith(('+++', '---'))]
        assert len(changed) < 120, f'{patch.name} changes {len(changed)} lines: keep the logic in extensions/'


def test_hook_patch_never_names_a_block():
    """Adding a block family must never change the patch: the hook names no block of ours."""
    hook = next(p for p in overlay_setup.patch_files() if 'hook' in p.name).read_text(encoding='utf-8')
    for name in registered():
        assert name not in hook


def test_setup_is_idempotent_in_this_checkout():
    before = tree_digest(BASE)
    r = run_setup(ROOT)
    assert r.returncode == 0, r.stderr
    assert 'patches: applied' not in r.stdout and 'populated' not in r.stdout  # nothing redone
    assert tree_digest(BASE) == before
    assert run_setup(ROOT, '--check').returncode == 0


def test_fresh_populate_is_the_same_tree_and_rerun_is_a_noop(scratch_root):
    r = run_setup(scratch_root)
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'populated from yolov5-utils==7.1.5' in r.stdout
    assert tree_digest(scratch_root / 'yolov5') == tree_digest(BASE)  # identical to this checkout's base
    assert not (scratch_root / 'yolov5' / '__init__.py').exists()  # the wheel's extra file is not copied
    again = run_setup(scratch_root)
    assert again.returncode == 0 and 'populated' not in again.stdout and 'patches: applied' not in again.stdout


def test_half_populated_and_edited_bases_are_explained_not_overwritten(scratch_root):
    assert run_setup(scratch_root).returncode == 0
    base = scratch_root / 'yolov5'
    (base / 'hubconf.py').unlink()
    r = run_setup(scratch_root)
    assert r.returncode == 1 and 'half-populated' in r.stderr and 'hubconf.py' in r.stderr
    assert not (base / 'hubconf.py').exists()  # nothing was restored behind the user's back

    shutil.copy2(BASE / 'hubconf.py', base / 'hubconf.py')
    edited = base / 'val.py'
    edited.write_text(edited.read_text() + '\n# my local experiment\n')
    r = run_setup(scratch_root)
    assert r.returncode == 1 and 'local edits' in r.stderr and 'val.py' in r.stderr
    assert edited.read_text().endswith('# my local experiment\n')  # the edit survives

    # An edit inside a patched file is found too (the patches are undone on a scratch copy to compare).
    general = base / 'utils' / 'general.py'
    general.write_text(general.read_text().replace('return False', 'return True', 1))
    r = run_setup(scratch_root, '--check')
    assert r.returncode == 1 and 'utils/general.py' in r.stderr

    r = run_setup(scratch_root, '--reset')
    assert r.returncode == 0, r.stderr
    assert tree_digest(base) == tree_digest(BASE)


def test_unpatched_base_gets_patched(scratch_root):
    """A base populated but not patched (e.g. by `git submodule update`) is patched, and verified."""
    base = scratch_root / 'yolov5'
    overlay_setup.extract_wheel_base(WHEEL, base)
    r = run_setup(scratch_root)
    assert r.returncode == 0, r.stderr
    assert 'patches: applied ' + ', '.join(p.name for p in overlay_setup.patch_files()) in r.stdout
    assert tree_digest(base) == tree_digest(BASE)


def test_yolo_py_builds_plain_yolov5s_offline(tmp_path):
    cmd = [sys.executable, str(BASE / 'models' / 'yolo.py'), '--cfg', str(BASE / 'models' / 'yolov5s.yaml')]
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'YOLOv5s summary' in r.stdout + r.stderr and '7235389 parameters' in r.stdout + r.stderr


# ------------------------------------------------------------------------------------------------ requirements
def fake_distributions(monkeypatch, installed: dict):
    """importlib.metadata answers from ``installed`` ({name: version}) only: nothing is installed or uninstalled."""
    def version(name):
        try:
            return installed[name.lower()]
        except KeyError:
            raise metadata.PackageNotFoundError(name) from None
    monkeypatch.setattr(metadata, 'version', version)


def no_pip(*args, **kwargs):
    raise AssertionError(f'setup ran pip: {args}')


def test_setup_checks_requirements_with_compat_and_its_aliases(monkeypatch):
    """Only opencv-python-headless installed (what many servers and containers have): opencv-python is met,
    so setup does not pip-install opencv-python over it. The check is compat's, the one YOLOv5 uses too."""
    names = [compat.Requirement(line).name.lower() for line in compat._parse_requirements(ROOT / 'requirements.txt')]
    assert 'opencv-python' in names
    installed = {n: '99999' for n in names if n != 'opencv-python'} | {'opencv-python-headless': '4.10.0.84'}
    fake_distributions(monkeypatch, installed)
    monkeypatch.setattr(overlay_setup.subprocess, 'call', no_pip)
    monkeypatch.setattr(overlay_setup.subprocess, 'run', no_pip)

    assert overlay_setup.unmet_requirements is compat.unmet_requirements  # one implementation
    assert compat.unmet_requirements(ROOT / 'requirements.txt') == []
    overlay_setup.ensure_dependencies()  # all met: no pip
    overlay_setup.ensure_dependencies(check_only=True)
    assert compat.check_requirements(('opencv-python>=4.6',)) is True

    installed['opencv-python-headless'] = '4.5.0'  # too old, and no other OpenCV: both checks say so
    assert compat.unmet_requirements(ROOT / 'requirements.txt') == ['opencv-python>=4.6 (found 4.5.0)']
    del installed['opencv-python-headless']
    assert compat.unmet_requirements(ROOT / 'requirements.txt') == ['opencv-python>=4.6 (not installed)']
    with pytest.raises(overlay_setup.SetupError, match=r'opencv-python>=4\.6 \(not installed\)'):
        overlay_setup.ensure_dependencies(check_only=True)
    with pytest.raises(compat.MissingRequirementError, match=r'opencv-python>=4\.6 \(not installed\).*setup\.py'):
        compat.check_requirements(ROOT / 'requirements.txt')
    # a format's package outside requirements.txt (export.py --include paddle): pip install it, not setup.py
    with pytest.raises(compat.MissingRequirementError, match=r"pip install paddlepaddle 'x2paddle>=1\.4' \(not in"):
        compat.check_requirements(('paddlepaddle', 'x2paddle>=1.4'))


def test_setup_pip_installs_only_the_unmet_lines(monkeypatch):
    """Something else missing next to opencv-python-headless: pip gets that line only, never opencv-python."""
    names = [compat.Requirement(line).name.lower() for line in compat._parse_requirements(ROOT / 'requirements.txt')]
    installed = {n: '99999' for n in names if n not in ('opencv-python', 'thop')}
    installed |= {'opencv-python-headless': '4.10.0.84', 'numpy': '1.26.4'}
    fake_distributions(monkeypatch, installed)
    calls = []

    def pip(cmd):
        calls.append(cmd)
        installed.update({'thop': '0.1.1', 'numpy': '2.1.0'})  # what pip would have installed
        return 0

    monkeypatch.setattr(overlay_setup.subprocess, 'call', pip)
    overlay_setup.ensure_dependencies()
    assert len(calls) == 1 and calls[0][1:4] == ['-m', 'pip', 'install']
    assert [a for a in calls[0][4:] if not a.startswith('--')] == ['numpy>=2.0', 'thop>=0.1.1']
