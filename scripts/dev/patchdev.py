#!/usr/bin/env python3
"""Developer tool for patches/: edit yolov5/ as commits in a side git dir, then write them back as diffs.

    python scripts/dev/patchdev.py init  [--git-dir .cache/patchdev.git]   # pristine commit + a commit per patch
    ... edit files under yolov5/, then `GIT_DIR=.cache/patchdev.git GIT_WORK_TREE=yolov5 git commit -a
        --fixup <commit of the patch>` and `git rebase -i --autosquash <pristine>` (or add a new commit whose
        subject is the new patch's name, e.g. 0008-something) ...
    python scripts/dev/patchdev.py export [--git-dir .cache/patchdev.git]  # rewrite patches/NNNN-*.diff
    python scripts/setup.py --reset                                        # re-populate + verify the new diffs

The git dir lives outside yolov5/ (yolov5/ stays a plain tree or the submodule checkout). `export` keeps
each existing patch's header (the text before its first `diff --git`, which must contain a `Why:` line); a
new patch gets a header to fill in. Needs a base populated from the wheel (`setup.py` caches it); the
pristine tree is unpacked by setup's own `extract_wheel_base`, so it is exactly what setup populates.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _bootstrap import ROOT  # this checkout first on sys.path (scripts/_bootstrap.py)

import setup as overlay  # scripts/setup.py: the paths, the wheel and the patch helpers


def git(git_dir: Path, *args, cwd=None, check=True) -> str:
    env = dict(os.environ, GIT_DIR=str(git_dir), GIT_WORK_TREE=str(cwd or overlay.BASE),
               GIT_AUTHOR_NAME='patchdev', GIT_AUTHOR_EMAIL='patchdev@localhost',
               GIT_COMMITTER_NAME='patchdev', GIT_COMMITTER_EMAIL='patchdev@localhost')
    r = subprocess.run(['git', *args], env=env, cwd=cwd or overlay.BASE, capture_output=True)
    if check and r.returncode != 0:
        raise SystemExit(f'git {" ".join(args)} failed:\n{r.stderr.decode(errors="replace")}')
    return r.stdout.decode('utf-8')  # bytes decoded as they are: CRLF lines of the base stay CRLF


def init(git_dir: Path) -> None:
    if git_dir.exists():
        raise SystemExit(f'{git_dir} exists; remove it or pass another --git-dir')
    wheel = overlay.fetch_wheel()
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp)
        overlay.extract_wheel_base(wheel, tree)
        git(git_dir, 'init', '-q', cwd=tree)
        git(git_dir, 'add', '-A', cwd=tree)
        git(git_dir, 'commit', '-qm', 'pristine', cwd=tree)
        for patch in overlay.patch_files():
            r = overlay._git_apply(tree, patch)
            if r.returncode != 0:
                raise SystemExit(f'{patch.name} does not apply: {r.stderr}')
            git(git_dir, 'add', '-A', cwd=tree)
            git(git_dir, 'commit', '-qm', patch.stem, cwd=tree)
    # The work tree is yolov5/: it must already equal the last commit (setup verified it).
    dirty = git(git_dir, 'status', '--porcelain', '--untracked-files=no')
    print(f'{git_dir}: pristine + {len(overlay.patch_files())} commits'
          + (f'; yolov5/ differs from them:\n{dirty}' if dirty else '; yolov5/ matches'))


def export(git_dir: Path) -> None:
    commits = git(git_dir, 'log', '--reverse', '--format=%H %s').splitlines()
    pristine = next(c.split()[0] for c in commits if c.split(maxsplit=1)[1] == 'pristine')
    wanted = [c.split(maxsplit=1) for c in commits[[c.split()[0] for c in commits].index(pristine) + 1:]]
    written = set()
    for sha, subject in wanted:
        path = overlay.PATCHES / f'{subject}.diff'
        old = path.read_text(encoding='utf-8') if path.exists() else ''
        header = old.split('diff --git', 1)[0] if old else f'Subject: {subject}\n\nWhy: (explain)\n\n'
        diff = git(git_dir, 'diff', '--no-color', '--no-ext-diff', f'{sha}~1', sha)
        path.write_bytes((header + diff).encode('utf-8'))
        written.add(path.name)
        print(f'wrote {path.relative_to(ROOT)}')
    for stale in overlay.patch_files():
        if stale.name not in written:
            print(f'note: {stale.relative_to(ROOT)} has no commit any more; delete it if that is intended')


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument('action', choices=['init', 'export'])
    ap.add_argument('--git-dir', type=Path, default=ROOT / '.cache' / 'patchdev.git')
    opt = ap.parse_args(argv)
    (init if opt.action == 'init' else export)(opt.git_dir.resolve())
    return 0


if __name__ == '__main__':
    sys.exit(main())
