"""A few DistributedDataParallel training steps of a model YAML, run by torch.distributed.run (torchrun).

    PYTHONPATH=yolov5 python -m torch.distributed.run --standalone --nproc_per_node 2 tests/ddp_check.py \
        --cfg models_yaml/yolov5n-res2.yaml --out result.json [--device cuda] [--sync-bn]

Each rank trains on its own fixed random batch with YOLOv5's ComputeLoss and SGD. After every backward, DDP
has averaged the gradients, so they must be identical on all ranks: rank 0 gathers every rank's flattened
gradients and records the largest difference, and each rank's loss per step. Backend: gloo on CPU, nccl on
CUDA (gloo with --backend gloo). Used by tests/test_reliability.py; also run on a GPU machine for SyncBN.
It imports the YOLOv5 base's `models` and `utils`, so yolov5/ must be on PYTHONPATH (the base then puts the
overlay root on sys.path itself).
"""

import argparse
import json
import os
from pathlib import Path

import torch
import torch.distributed as dist
import yaml
from models.yolo import Model
from utils.loss import ComputeLoss

ROOT = Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--cfg', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--steps', type=int, default=6)
    ap.add_argument('--img', type=int, default=64)
    ap.add_argument('--batch', type=int, default=2, help='per rank')
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--backend', default='')
    ap.add_argument('--sync-bn', action='store_true')
    opt = ap.parse_args()

    rank, world, local = int(os.environ['RANK']), int(os.environ['WORLD_SIZE']), int(os.environ['LOCAL_RANK'])
    cuda = opt.device == 'cuda'
    device = torch.device(f'cuda:{local % torch.cuda.device_count()}' if cuda else 'cpu')
    backend = opt.backend or ('nccl' if cuda else 'gloo')
    dist.init_process_group(backend, device_id=device if backend == 'nccl' else None)
    torch.set_num_threads(1)

    torch.manual_seed(0)  # same initial weights on every rank (DDP also broadcasts rank 0's)
    model = Model(str(opt.cfg), ch=3, nc=3).to(device)
    model.hyp = yaml.safe_load((ROOT / 'yolov5' / 'data' / 'hyps' / 'hyp.scratch-low.yaml').read_text())
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    if opt.sync_bn:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    n_sync = sum(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
    compute_loss = ComputeLoss(model)
    ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if cuda else None)
    opt_sgd = torch.optim.SGD(ddp.parameters(), lr=0.01, momentum=0.9)

    g = torch.Generator().manual_seed(100 + rank)  # a different batch on each rank
    imgs = torch.rand(opt.batch, 3, opt.img, opt.img, generator=g).to(device)
    targets = torch.cat([torch.arange(opt.batch).repeat_interleave(2)[:, None].float(),   # image index
                         torch.randint(0, 3, (opt.batch * 2, 1), generator=g).float(),      # class
                         0.25 + 0.5 * torch.rand(opt.batch * 2, 2, generator=g),            # xc, yc
                         0.1 + 0.3 * torch.rand(opt.batch * 2, 2, generator=g)], 1).to(device)  # w, h

    losses, grad_diffs = [], []
    ddp.train()
    for _ in range(opt.steps):
        opt_sgd.zero_grad()
        loss, _ = compute_loss(ddp(imgs), targets)
        loss.backward()
        flat = torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])
        gathered = [torch.empty_like(flat) for _ in range(world)]
        dist.all_gather(gathered, flat)
        grad_diffs.append(max((g_ - gathered[0]).abs().max().item() for g_ in gathered))
        losses.append(loss.item())
        opt_sgd.step()

    all_losses = [None] * world
    dist.all_gather_object(all_losses, losses)
    if rank == 0:
        Path(opt.out).write_text(json.dumps({
            'world': world, 'backend': backend, 'device': str(device), 'sync_bn': opt.sync_bn,
            'bn_layers': n_bn, 'syncbn_layers': n_sync, 'losses': all_losses, 'max_grad_diff': grad_diffs,
            'grad_scale': flat.abs().max().item()}, indent=1))
    dist.destroy_process_group()


if __name__ == '__main__':
    main()
