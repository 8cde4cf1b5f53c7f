"""Run-time support shared by every generated backbone.

Rendered by d2timm-gen into the package so that it is self-contained: importing it
needs torch, timm and detectron2 only. Do not edit: regenerate.
"""

from .backbone import Feature, TimmBackbone
from .config import add_timm_config
from .fpn import GroupNorm32, LastLevelP6P7, TimmFPN, TopLevelMaxPool, build_fpn
from .optim import optimizer_params
from .pyramid import SimpleFeaturePyramid
from .registry import register_backbone
from .resample import GridParam

__all__ = [
    "Feature",
    "GroupNorm32",
    "GridParam",
    "LastLevelP6P7",
    "SimpleFeaturePyramid",
    "TimmBackbone",
    "TimmFPN",
    "TopLevelMaxPool",
    "add_timm_config",
    "build_fpn",
    "optimizer_params",
    "register_backbone",
]
