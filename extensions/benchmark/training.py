"""Training cost: throughput of one training iteration as yolov5/train.py does it, in timed pairs alternating
plain and extension, and the peak memory of training (CPU: growth of the peak resident set in a fresh process,
``memory_subprocess``; GPU: ``torch.cuda.max_memory_allocated``)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys

import torch
import yaml
from utils.loss import ComputeLoss
from utils.torch_utils import ModelEMA, smart_optimizer

from extensions.machine import peak_rss_bytes, reset_peak_rss, rss_bytes

from .build import build, quiet
from .results import Entry, Memory, Ratio, Training
from .settings import BASE, ROOT, SpeedSettings
from .stats import median, ratio_stats
from .timing import Pairs, record

LOSS_HYP = BASE / 'data' / 'hyps' / 'hyp.scratch-low.yaml'  # hyp for the training-throughput loss
PROBE_CODE = ('import json, sys\nfrom extensions.benchmark.training import memory_probe\n'
              'c, i, b, t = sys.argv[1:]\nprint(json.dumps(memory_probe(c, int(i), int(b), int(t))))')  # fresh process


def loss_hyp() -> dict:
    return yaml.safe_load(LOSS_HYP.read_text())


def synthetic_batch(batch: int, imgsz: int, nc: int = 80, seed: int = 0):
    """A fixed batch: uniform images and 1-6 boxes per image, targets as YOLOv5's dataloader gives them
    (image index, class, xc, yc, w, h normalised)."""
    g = torch.Generator().manual_seed(seed)
    imgs = torch.rand(batch, 3, imgsz, imgsz, generator=g)
    rows = []
    for i in range(batch):
        for _ in range(int(torch.randint(1, 7, (1,), generator=g))):
            wh = 0.05 + 0.4 * torch.rand(2, generator=g)
            xy = wh / 2 + (1 - wh) * torch.rand(2, generator=g)
            rows.append([i, int(torch.randint(0, nc, (1,), generator=g)), *xy.tolist(), *wh.tolist()])
    return imgs, torch.tensor(rows, dtype=torch.float32)


class Trainer:
    """One training iteration as yolov5/train.py does it: autocast (CUDA), model(imgs), ComputeLoss, backward,
    unscale + clip_grad_norm(10), SGD step (smart_optimizer's 3 groups), zero_grad, EMA update. amp: autocast and
    GradScaler (None: on CUDA, as train.py; never on the CPU)."""

    def __init__(self, cfg: str, device, imgsz: int, batch: int, hyp: dict, nc: int = 80, amp: bool | None = None):
        self.cuda = device.type == 'cuda' and amp is not False  # AMP on
        self.model = build(cfg, nc).to(device).train()
        nl = self.model.model[-1].nl
        h = dict(hyp)
        h['box'] *= 3 / nl  # as train.py scales them
        h['cls'] *= nc / 80 * 3 / nl
        h['obj'] *= (imgsz / 640) ** 2 * 3 / nl
        h['label_smoothing'] = 0.0
        self.model.nc, self.model.hyp = nc, h
        self.loss = ComputeLoss(self.model)
        with quiet():
            self.opt = smart_optimizer(self.model, 'SGD', h['lr0'], h['momentum'], h['weight_decay'])
        self.ema = ModelEMA(self.model)
        self.scaler = torch.amp.GradScaler('cuda', enabled=self.cuda)
        imgs, targets = synthetic_batch(batch, imgsz, nc)
        self.imgs, self.targets = imgs.to(device), targets.to(device)

    def step(self):
        with torch.amp.autocast('cuda', enabled=self.cuda):
            pred = self.model(self.imgs)
            loss, _ = self.loss(pred, self.targets)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.opt)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm=10.0)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.opt.zero_grad()
        self.ema.update(self.model)


# ------------------------------------------------------------------------------------------- throughput
def measure_throughput(group: list[Entry], settings: SpeedSettings, pairs: Pairs) -> None:
    """Time training iterations of each extension model of a group against its plain model (group[0]) on a
    fixed synthetic batch: results.train, ratio = per-pair throughput ratio (plain time / ext time)."""
    hyp = loss_hyp()
    device = torch.device(settings.device)
    plain = group[0]
    plain_tr = None
    for e in group[1:]:
        pairs.say(f'{e.name} vs {plain.name}: train')
        plain_tr = plain_tr or Trainer(plain.cfg, device, settings.train_img, settings.train_batch, hyp)
        tr = Trainer(e.cfg, device, settings.train_img, settings.train_batch, hyp)
        ta, tb, info = pairs.time(plain_tr.step, tr.step, settings.train_iters, settings.train_warmup)
        if plain.results.train is None:
            plain.results.train = Training()
        e.results.train = record(plain.results.train, ta, tb, info, [a / b for a, b in zip(ta, tb)], Training)
        del tr


def summarise_training(group: list[Entry], batch: int) -> None:
    """Images/s of each model of a group from its timed iterations (plain: ratio 1)."""
    for e in group:
        r = e.results.train
        if r is None:
            continue
        r.images_per_s = batch / median(r.times)
        if e.plain:
            r.ratio = Ratio(**ratio_stats([1.0]))


# ----------------------------------------------------------------------------------------------- memory
def memory_probe(cfg: str, imgsz: int, batch: int, threads: int) -> dict:
    """Run in a fresh process: peak resident-set growth over two training iterations (CPU)."""
    torch.set_num_threads(threads)
    tr = Trainer(cfg, torch.device('cpu'), imgsz, batch, loss_hyp())
    gc.collect()
    base = rss_bytes()
    exact = reset_peak_rss()
    for _ in range(2):
        tr.step()
    peak = peak_rss_bytes()
    return {'base_mb': base / 2**20, 'peak_mb': peak / 2**20, 'delta_mb': (peak - base) / 2**20, 'exact': exact}


def memory_subprocess(cfg: str, imgsz: int, batch: int, threads: int) -> dict:
    """memory_probe in a fresh Python process (PROBE_CODE); {'error': [...]} if it fails."""
    cmd = [sys.executable, '-c', PROBE_CODE, cfg, str(imgsz), str(batch), str(threads)]
    path = os.pathsep.join([str(ROOT), str(BASE), *filter(None, [os.environ.get('PYTHONPATH')])])
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800,
                       env=dict(os.environ, PYTHONPATH=path))
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith('{')]
    if r.returncode or not lines:
        return {'error': (r.stderr or r.stdout).strip().splitlines()[-1:] or ['failed']}
    return json.loads(lines[-1])


def cuda_memory(cfg: str, device, imgsz: int, batch: int) -> dict:
    """Growth of torch.cuda.max_memory_allocated over two training iterations."""
    gc.collect()
    torch.cuda.empty_cache()
    tr = Trainer(cfg, device, imgsz, batch, loss_hyp())
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    for _ in range(2):
        tr.step()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    return {'base_mb': base / 2**20, 'peak_mb': peak / 2**20, 'delta_mb': (peak - base) / 2**20, 'exact': True}


def measure_memory(group: list[Entry], settings: SpeedSettings, pbar) -> None:
    """results.memory of each model of a group: peak memory growth of training."""
    device = torch.device(settings.device)
    for e in group:
        pbar.set_description(f'{e.name}: training memory')
        if device.type == 'cuda':
            m = cuda_memory(e.cfg, device, settings.train_img, settings.train_batch)
        else:
            m = memory_subprocess(e.cfg, settings.train_img, settings.train_batch, settings.threads)
        e.results.memory = Memory(**m)
        pbar.update(1)
