"""The block families of this overlay: one row each, read by the registry, the benchmark, the tests and docs.

Adding a family is one module ``extensions/<module>.py`` whose blocks are ``@register``-ed, one row here, and
its YAMLs ``models_yaml/yolov5{n,s,m,l,x}-<suffix>.yaml`` (YOLOv5's with every ``C3`` swapped for ``c3``): README
"Adding a block family", which tests/test_families.py follows to the letter on a toy family.
Standard library only: the base imports this package before torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

MODELS_YAML = Path(__file__).resolve().parents[1] / 'models_yaml'
SCALES = ('n', 's', 'm', 'l', 'x')  # YOLOv5's depth/width multiples, as upstream's yolov5<scale>.yaml
BACKBONE_NECK = 'm'  # neck scale of the pretrained-backbone YAMLs: yolov5l's cost in total (docs/pretrained.md)


@dataclass(frozen=True)
class Family:
    key: str  # short id: benchmark rows and JSON, test ids
    module: str  # extensions.<module> registers the family's blocks
    title: str
    paper: str
    c3: str  # the C3 variant the YAMLs swap in for every C3
    suffix: str  # models_yaml/yolov5<scale>-<suffix>.yaml
    variants: dict = field(default_factory=dict)  # other YAML suffixes of this family: {suffix: what it is}
    timm: str = ''  # the timm model with ImageNet weights whose backbone models_yaml/yolov5m-<timm>.yaml rebuilds

    def yaml(self, scale: str) -> Path:
        """The family's model YAML at one scale (n, s, m, l, x)."""
        return MODELS_YAML / f'yolov5{scale}-{self.suffix}.yaml'

    @property
    def backbone_yaml(self) -> Path | None:
        """The YAML of the family's pretrained backbone (timm model ``timm``) under YOLOv5's v6.0 neck and head at
        ``BACKBONE_NECK`` scale: ``models_yaml/yolov5m-<timm>.yaml`` (docs/pretrained.md); None without ``timm``."""
        return MODELS_YAML / f'yolov5{BACKBONE_NECK}-{self.timm}.yaml' if self.timm else None


FAMILIES = (
    Family('res2', 'res2net', 'Res2Net',
           'Gao et al., Res2Net: A New Multi-scale Backbone Architecture, TPAMI 2021',
           'C3_Res2Block', 'res2', timm='res2net50d'),
    Family('resnest', 'resnest', 'ResNeSt',
           'Zhang et al., ResNeSt: Split-Attention Networks, CVPRW 2022',
           'C3_ResNeSt', 'resnest', timm='resnest50d'),
    Family('serd', 'resnet_rs', 'SE-ResNet-D',
           'Bello et al., Revisiting ResNets (ResNet-RS), NeurIPS 2021; Hu et al. (SE); He et al. (ResNet-D)',
           'C3_SEResNetD', 'serd', {'rs': 'ResNet-RS backbone: DeepStem, ResNetDDown transitions, C3_SEResNetD'},
           timm='resnetrs50'),
)


def by_key(key: str) -> Family:
    """The family with this key; ValueError listing the keys otherwise."""
    for f in FAMILIES:
        if f.key == key:
            return f
    raise ValueError(f"unknown block family '{key}': expected one of {', '.join(f.key for f in FAMILIES)}")


def of_module(module: str) -> Family | None:
    """The family whose module is ``extensions.<module>`` (or ``<module>``), None for any other module."""
    name = module.rsplit('.', 1)[-1]
    return next((f for f in FAMILIES if f.module == name), None)


def of_suffix(suffix: str) -> Family | None:
    """The family a YAML suffix (``res2`` of ``yolov5s-res2.yaml``, or a variant's) belongs to; None if none."""
    return next((f for f in FAMILIES if suffix == f.suffix or suffix in f.variants), None)


def default_yamls(scales=SCALES) -> list[Path]:
    """Every family's YAML at each scale, family-major: the configurations the project ships and tests."""
    return [f.yaml(s) for f in FAMILIES for s in scales]
