#!/usr/bin/env python3
"""One-command setup: dependencies, the pinned YOLOv5 base in yolov5/, and the patches in patches/.

    python scripts/setup.py            # install what is missing, populate + patch yolov5/, verify
    python scripts/setup.py --check    # verify only; exit 1 and say what is wrong
    python scripts/setup.py --reset    # throw away yolov5/ contents (after asking nothing: you asked) and redo

Steps (each a no-op when already done, so a re-run takes about a second):
1. Dependencies: every line of requirements.txt is checked against the installed distributions (a
   distribution that provides the same import counts, e.g. opencv-python-headless for opencv-python); only
   the lines that are missing or too old are given to `pip install` (into the active environment).
2. The base: yolov5/ is a git submodule pinned at BASE_COMMIT. An empty yolov5/ is populated by
   `git submodule update --init` where GitHub is reachable, otherwise from the registry mirror of the same
   commit, the PyPI wheel yolov5-utils==7.1.5 (pinned by sha256), whose yolov5_utils/yolov5/ tree is
   upstream a199480ba except three files (see README). The wheel path populates a staging copy, patches and
   verifies it, and only then moves it into place, so an interruption never leaves a half-made yolov5/.
   A yolov5/ with missing files or local edits is reported file by file and never overwritten.
3. Patches: patches/NNNN-*.diff are applied in order with `git apply`; each is recognised as applied or
   not, and after applying every patch is verified to be in place (a failure names the patch).
It runs before any requirement is installed: standard library only, plus the requirement check of
extensions/compat.py (itself standard library + `packaging`, or pip's vendored copy), the one implementation
of that check, shared with YOLOv5's `check_requirements` (patches/0003).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from _bootstrap import ROOT  # this checkout first on sys.path (scripts/_bootstrap.py)

from extensions.compat import unmet_requirements

REQUIREMENTS = ROOT / 'requirements.txt'
BASE = ROOT / 'yolov5'
PATCHES = ROOT / 'patches'
MANIFEST = PATCHES / 'base.sha256'  # sha256 of every file of the pristine base (wheel tree)
STAMP = BASE / '.overlay-stamp.json'  # written after a verified setup; read by extensions.compat.check_base
CACHE = ROOT / '.cache' / 'base'
BASE_COMMIT = 'a199480ba6bb527598df11abbc1d679ccda82670'
WHEEL = 'yolov5_utils-7.1.5-py37.py38.py39.py310-none-any.whl'
WHEEL_REQ = 'yolov5-utils==7.1.5'
WHEEL_SHA256 = 'e9e73efac84766a1b626587313afba96a1432471e488fa2e7ffd9ba95915be4e'
WHEEL_PREFIX = 'yolov5_utils/yolov5/'
WHEEL_EXTRA = {'__init__.py'}  # in the wheel, absent upstream: not copied
# Files of the wheel tree that differ from upstream a199480ba (README explains why that is harmless).
WHEEL_DIFFERS = {'models/common.py', 'utils/triton.py'}


class SetupError(RuntimeError):
    pass


def log(msg):
    print(f'setup: {msg}', flush=True)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------------ dependencies
def ensure_dependencies(check_only=False):
    missing = unmet_requirements(REQUIREMENTS)
    if not missing:
        log('dependencies: all of requirements.txt is installed')
        return
    if check_only:
        raise SetupError('missing dependencies: ' + '; '.join(missing))
    lines = [m.rsplit(' (', 1)[0] for m in missing]  # 'numpy>=2.0 (found 1.26.4)' -> 'numpy>=2.0'
    log(f'dependencies: installing {len(missing)} missing: ' + ', '.join(lines))
    # Only what is unmet: `-r requirements.txt` would also install e.g. opencv-python next to an
    # opencv-python-headless that already satisfies it (two packages writing the same cv2 module).
    cmd = [sys.executable, '-m', 'pip', 'install', '--disable-pip-version-check', *lines]
    if subprocess.call(cmd) != 0:
        raise SetupError(f'pip install failed: {" ".join(cmd)}')
    still = unmet_requirements(REQUIREMENTS)
    if still:
        raise SetupError('still missing after pip install: ' + '; '.join(still))


# ---------------------------------------------------------------------------------------------------- patches
def patch_files() -> list[Path]:
    return sorted(PATCHES.glob('[0-9][0-9][0-9][0-9]-*.diff'))


def patched_paths(patch: Path) -> list[str]:
    paths = []
    for line in patch.read_text(encoding='utf-8').splitlines():
        if line.startswith('+++ b/'):
            paths.append(line[6:].strip())
    return paths


def _git_apply(base: Path, patch: Path, *flags) -> subprocess.CompletedProcess:
    env = dict(os.environ, GIT_CEILING_DIRECTORIES=str(base.parent))  # never apply to the overlay repo itself
    for k in ('GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE'):
        env.pop(k, None)
    return subprocess.run(['git', 'apply', '--whitespace=nowarn', *flags, str(patch)], cwd=base, env=env,
                          capture_output=True, text=True)


def apply_patches(base: Path, names) -> None:
    """Apply the named patches, in order; a failure names the patch and what git apply said."""
    for patch in patch_files():
        if patch.name not in names:
            continue
        r = _git_apply(base, patch)
        if r.returncode != 0:
            raise SetupError(f'patch {patch.name} does not apply to yolov5/: the files it changes '
                             f'({", ".join(patched_paths(patch))}) were edited.\n{r.stderr.strip()}\n'
                             f'Fix: undo the local edits in yolov5/ (or run `python scripts/setup.py --reset`).')


# ------------------------------------------------------------------------------------------------ base state
def read_manifest() -> dict[str, str]:
    files = {}
    for line in MANIFEST.read_text().splitlines():
        if line.strip():
            digest, path = line.split(maxsplit=1)
            files[path] = digest
    return files


def pristine_bytes_ok(base: Path, rel: str, data: bytes, manifest: dict[str, str]) -> bool:
    if hashlib.sha256(data).hexdigest() == manifest[rel]:
        return True
    if rel in WHEEL_DIFFERS and (base / '.git').exists():  # a submodule checkout holds upstream's version
        r = subprocess.run(['git', '-C', str(base), 'show', f'{BASE_COMMIT}:{rel}'], capture_output=True)
        return r.returncode == 0 and r.stdout == data
    return False


def verify_base(base: Path, manifest: dict[str, str]) -> dict:
    """Check every file of the base against the pristine manifest, allowing exactly the patches' changes.

    Patches overlap (several touch utils/general.py), so they are recognised together: on a scratch copy
    of the files they touch, every patch that can be undone is undone, last to first; the result must be
    the pristine base. Returns {'missing': [...], 'edited': [...], 'patches': {name: 'applied'|'unapplied'}}.
    """
    missing = [rel for rel in manifest if not (base / rel).is_file()]
    patches = patch_files()
    touched = {rel for p in patches for rel in patched_paths(p)}
    edited = [rel for rel in manifest if rel not in touched and rel not in missing
              and not pristine_bytes_ok(base, rel, (base / rel).read_bytes(), manifest)]
    applied = set()
    if not missing:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            for rel in touched:
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(base / rel, tmp / rel)
            for p in reversed(patches):
                if _git_apply(tmp, p, '--check', '-R').returncode == 0 and _git_apply(tmp, p, '-R').returncode == 0:
                    applied.add(p.name)
            edited += [rel for rel in sorted(touched) if rel in manifest
                       and not pristine_bytes_ok(base, rel, (tmp / rel).read_bytes(), manifest)]
    states = {p.name: 'applied' if p.name in applied else 'unapplied' for p in patches}
    return {'missing': missing, 'edited': sorted(set(edited)), 'patches': states}


def is_empty(base: Path) -> bool:
    return not base.exists() or not any(p for p in base.iterdir() if p.name not in {'.DS_Store'})


# --------------------------------------------------------------------------------------------- populating
def try_submodule() -> bool:
    if not (ROOT / '.git').exists() or shutil.which('git') is None:
        return False
    env = dict(os.environ, GIT_TERMINAL_PROMPT='0')
    for k in ('GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE'):
        env.pop(k, None)
    try:
        r = subprocess.run(['git', 'submodule', 'update', '--init', '--', 'yolov5'], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        log('submodule: no answer from GitHub within 60 s')
        return False
    if r.returncode == 0 and (BASE / 'train.py').is_file():
        log(f'base: populated from the git submodule at {BASE_COMMIT[:9]}')
        return True
    log('submodule: not reachable (' + (r.stderr.strip().splitlines() or ['?'])[-1] + '); using the PyPI mirror')
    return False


def fetch_wheel() -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    wheel = CACHE / WHEEL
    if not wheel.is_file() or sha256(wheel) != WHEEL_SHA256:
        log(f'base: downloading {WHEEL_REQ} (the registry mirror of upstream {BASE_COMMIT[:9]}) ...')
        cmd = [sys.executable, '-m', 'pip', 'download', '--disable-pip-version-check', '--no-deps',
               '--only-binary=:all:', '-d', str(CACHE), WHEEL_REQ]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0 or not wheel.is_file():
            raise SetupError(f'could not get {WHEEL_REQ} from the package index:\n{r.stderr.strip()[-2000:]}')
    got = sha256(wheel)
    if got != WHEEL_SHA256:
        raise SetupError(f'{wheel} has sha256 {got}, expected {WHEEL_SHA256}: not the pinned base; delete it')
    return wheel


def extract_wheel_base(wheel: Path, dest: Path) -> None:
    """Unpack the wheel's pristine base (its WHEEL_PREFIX tree, less WHEEL_EXTRA) into ``dest``, file modes kept.

    The one unpacking of the wheel: setup populates yolov5/ with it, and scripts/dev/patchdev.py builds the
    pristine commit of its side git dir with it, so both see the same tree.
    """
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            if not info.filename.startswith(WHEEL_PREFIX) or info.is_dir():
                continue
            rel = info.filename[len(WHEEL_PREFIX):]
            if rel in WHEEL_EXTRA:
                continue
            path = dest / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(z.read(info))
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                path.chmod(mode)


def populate_from_wheel(manifest: dict[str, str]) -> None:
    wheel = fetch_wheel()
    staging = Path(tempfile.mkdtemp(prefix='staging-', dir=CACHE))
    try:
        extract_wheel_base(wheel, staging)
        state = verify_base(staging, manifest)
        if state['missing'] or state['edited']:
            raise SetupError(f'the wheel tree does not match patches/base.sha256: {state}')
        apply_patches(staging, [p.name for p in patch_files()])
        # Move into place: yolov5/ is empty (checked by the caller), so this cannot clobber anything.
        BASE.mkdir(exist_ok=True)
        for item in staging.iterdir():
            os.replace(item, BASE / item.name)
        log(f'base: populated from {WHEEL_REQ} (sha256 verified) = upstream {BASE_COMMIT[:9]} but for '
            f'{", ".join(sorted(WHEEL_DIFFERS))} (see README)')
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------- main
def write_stamp(source: str) -> None:
    stamp = {'base_commit': BASE_COMMIT, 'source': source,
             'patches': {p.name: sha256(p) for p in patch_files()}}
    STAMP.write_text(json.dumps(stamp, indent=1) + '\n')


def describe_problems(state: dict) -> str:
    lines = []
    if state['missing']:
        lines.append(f"{len(state['missing'])} files of the base are missing (half-populated), e.g. "
                     + ', '.join(state['missing'][:5]))
    if state['edited']:
        lines.append('files differ from the pinned base plus patches/ (local edits): ' + ', '.join(state['edited']))
        stuck = [n for n, s in state['patches'].items() if s != 'applied']
        if stuck and len(stuck) < len(state['patches']):
            lines.append('patches not recognised in place (an edit inside what they change?): ' + ', '.join(stuck))
    return '\n  - '.join(['yolov5/ is not the pinned base:'] + lines) + (
        '\nNothing was overwritten. Keep your edits elsewhere, then run `python scripts/setup.py --reset` '
        '(deletes yolov5/ contents and populates it again), or restore the files by hand.')


def setup_base(check_only=False) -> None:
    manifest = read_manifest()
    if is_empty(BASE):
        if check_only:
            raise SetupError('yolov5/ is empty: run `python scripts/setup.py`')
        source = 'submodule' if try_submodule() else 'wheel'
        if source == 'wheel':
            populate_from_wheel(manifest)
    else:
        source = 'submodule' if (BASE / '.git').exists() else 'wheel'
    state = verify_base(BASE, manifest)
    if state['missing'] or state['edited']:
        raise SetupError(describe_problems(state))
    todo = [n for n, s in state['patches'].items() if s == 'unapplied']
    if todo:
        if check_only:
            raise SetupError(f'patches not applied: {", ".join(todo)}: run `python scripts/setup.py`')
        STAMP.unlink(missing_ok=True)  # entry points refuse to run until the new state is verified
        apply_patches(BASE, todo)
        log('patches: applied ' + ', '.join(todo))
    final = verify_base(BASE, manifest)
    not_in_place = [n for n, s in final['patches'].items() if s != 'applied']
    if not_in_place or final['edited'] or final['missing']:
        raise SetupError('after patching, not in place: ' + ', '.join(not_in_place) + describe_problems(final))
    if check_only and not STAMP.exists():
        raise SetupError('yolov5/ is patched but has no setup stamp: run `python scripts/setup.py`')
    if not check_only:
        write_stamp(source)
    log(f'base: yolov5/ = {BASE_COMMIT[:9]} ({source}) + {len(final["patches"])} patches, all verified in place')


def reset_base() -> None:
    if (BASE / '.git').exists():
        raise SetupError('yolov5/ is a git checkout: reset it with `git -C yolov5 checkout -- . && git -C yolov5 '
                         'clean -fdx`, then run setup again')
    for item in BASE.iterdir() if BASE.exists() else ():
        shutil.rmtree(item) if item.is_dir() and not item.is_symlink() else item.unlink()
    log('base: yolov5/ emptied (--reset)')


def write_manifest(tree: Path) -> None:
    """Developer command: record the pristine base's file hashes (run on a freshly extracted wheel tree)."""
    lines = [f'{sha256(p)}  {p.relative_to(tree).as_posix()}' for p in sorted(tree.rglob('*'))
             if p.is_file() and '__pycache__' not in p.parts]
    MANIFEST.write_text('\n'.join(lines) + '\n')
    log(f'wrote {MANIFEST} ({len(lines)} files)')


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--check', action='store_true', help='verify only, change nothing')
    ap.add_argument('--skip-deps', action='store_true', help='do not check or install requirements.txt')
    ap.add_argument('--reset', action='store_true', help='empty yolov5/ first, then populate and patch it again')
    ap.add_argument('--write-manifest', type=Path, metavar='TREE', help=argparse.SUPPRESS)
    opt = ap.parse_args(argv)
    t0 = time.time()
    try:
        if opt.write_manifest:
            write_manifest(opt.write_manifest)
            return 0
        if not opt.skip_deps:
            ensure_dependencies(check_only=opt.check)
        if opt.reset:
            reset_base()
        setup_base(check_only=opt.check)
    except SetupError as e:
        print(f'setup: ERROR: {e}', file=sys.stderr)
        return 1
    log(f'done in {time.time() - t0:.1f}s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
