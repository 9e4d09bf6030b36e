"""Static cost of a model: parameters and GFLOPs (YOLOv5's own count, thop, at the real input size)."""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass, field

import thop
import torch

from .build import build, fused, quiet
from .results import Cost, Entry, Static


def param_count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def gflops_at(model, imgsz: int = 640) -> tuple[float, dict]:
    """GFLOPs (thop, 2 FLOPs per MAC, as YOLOv5 counts them) of one forward at (1, 3, imgsz, imgsz), and GFLOPs of
    each top-level layer. Counted at the real size rather than YOLOv5's model_info shortcut (a stride-size input,
    scaled): that shortcut scales the squeeze-excitation / split-attention FCs on pooled 1x1 features by
    (imgsz/32)^2 too, which overstates SE and ResNeSt models by 1-2%."""
    p = next(model.parameters())
    im = torch.zeros((1, 3, imgsz, imgsz), device=p.device, dtype=p.dtype)
    with quiet():
        macs, _, layers = thop.profile(deepcopy(model), inputs=(im,), verbose=False, ret_layer_info=True)
    per_layer = {int(i): v[0] * 2 / 1e9 for i, v in layers['model'][2].items()} if 'model' in layers else {}
    return macs * 2 / 1e9, per_layer


@dataclass
class Built:
    """The fused models of a group by name, and each one's GFLOPs per top-level layer at the latency image size
    (what the profile of a missed target divides its layer times by)."""

    fused: dict = field(default_factory=dict)
    layer_gflops: dict = field(default_factory=dict)


def measure_cost(group: list[Entry], img: int, pbar) -> Built:
    """Build and fuse each model of a group (CPU, fp32); record its params and GFLOPs at 640 and at img
    (results.static)."""
    built = Built()
    for e in group:
        pbar.set_description(f'{e.name}: build, fuse, GFLOPs')
        m = build(e.cfg)
        fm = fused(m)
        g640, per_layer = gflops_at(fm, 640)
        if img != 640:
            gimg, per_layer = gflops_at(fm, img)
        else:
            gimg = g640
        e.results.static = Static(param_count(fm), param_count(m), g640, gimg)
        built.fused[e.name], built.layer_gflops[e.name] = fm, per_layer
        pbar.update(1)
    return built


def cost_ratios(group: list[Entry]) -> None:
    """results.cost: params and GFLOPs of each model of a group as a ratio to its plain model (group[0])."""
    pst = group[0].results.static
    for e in group:
        st = e.results.static
        e.results.cost = Cost(st.params / pst.params, st.gflops / pst.gflops)
