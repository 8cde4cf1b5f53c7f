"""The FPN variant of a generated backbone, built on detectron2's own FPN.

The levels above the coarsest FPN level are the ones the config's heads read, built as
detectron2 builds them for its own meta-architectures (``MODEL.BACKBONE.CONFIG.TOP_BLOCK``):

    maxpool    one max-pooled level (detectron2's ``LastLevelMaxPool``): the R-CNN family,
               Panoptic FPN, semantic FPN. The default, except for RetinaNet.
    p6p7       two levels from stride-2 convolutions on the coarsest backbone level
               (``LastLevelP6P7`` on ``res5``, as ``build_retinanet_resnet_fpn_backbone``):
               the default for ``META_ARCHITECTURE: RetinaNet``.
    p6p7_fpn   the same from the coarsest FPN output (``p5``), as detectron2's FCOS config.

A simple feature pyramid (single-scale models) has no coarser backbone level than its
input, so ``p6p7`` is built on its coarsest output there, like ``p6p7_fpn``.
"""

import math
import re
from typing import Dict, Optional, Sequence

import torch
from detectron2.modeling.backbone.fpn import FPN, LastLevelMaxPool, LastLevelP6P7

from .padding import fit_to_input, pad_to, padded_size, padding_constraints
from .pyramid import SimpleFeaturePyramid

__all__ = [
    "GroupNorm32",
    "LastLevelP6P7",
    "SimpleFeaturePyramid",
    "TOP_BLOCKS",
    "TimmFPN",
    "TopLevelMaxPool",
    "build_fpn",
    "check_head_features",
    "fpn_levels",
    "top_block",
    "top_block_kind",
]

#: The top blocks ``MODEL.BACKBONE.CONFIG.TOP_BLOCK`` names (see the module docstring).
TOP_BLOCKS = ("maxpool", "p6p7", "p6p7_fpn")
#: The default top block of each meta-architecture that needs another than ``maxpool``.
META_ARCHITECTURE_TOP_BLOCKS = {"RetinaNet": "p6p7"}
#: The config keys naming the levels each meta-architecture's heads read.
HEAD_FEATURE_KEYS = {
    "GeneralizedRCNN": ("MODEL.RPN.IN_FEATURES", "MODEL.ROI_HEADS.IN_FEATURES"),
    "PanopticFPN": (
        "MODEL.RPN.IN_FEATURES",
        "MODEL.ROI_HEADS.IN_FEATURES",
        "MODEL.SEM_SEG_HEAD.IN_FEATURES",
    ),
    "RetinaNet": ("MODEL.RETINANET.IN_FEATURES",),
    "SemanticSegmentor": ("MODEL.SEM_SEG_HEAD.IN_FEATURES",),
}


def _log2(stride: int) -> Optional[int]:
    return stride.bit_length() - 1 if stride > 0 and stride & (stride - 1) == 0 else None


def fpn_levels(bottom_up, in_features: Sequence[str]) -> Sequence[str]:
    """Check that ``in_features`` suit detectron2's FPN and return them finest first.

    FPN needs strides that are powers of two, each twice the previous.
    """
    outputs = bottom_up.output_shape()
    valid = getattr(bottom_up, "FPN_IN_FEATURES", ())
    for name in in_features:
        if name not in outputs:
            raise ValueError(
                f"MODEL.FPN.IN_FEATURES: {name!r} is not an output of the backbone; valid: "
                f"{', '.join(outputs)} (the backbone's outputs follow MODEL.BACKBONE.CONFIG.REMAPS)"
            )
    ordered = sorted(in_features, key=lambda name: outputs[name].stride)
    strides = [outputs[name].stride for name in ordered]
    bad = [s for s in strides if _log2(s) is None]
    doubling = all(b == 2 * a for a, b in zip(strides, strides[1:]))
    if bad or not doubling:
        raise ValueError(
            f"MODEL.FPN.IN_FEATURES: {list(in_features)} have strides {strides}; FPN needs powers of two, "
            f"each twice the previous. Valid for this model: {', '.join(valid) or 'none'}"
        )
    return ordered


class GroupNorm32(torch.nn.GroupNorm):
    """detectron2's ``"GN"`` (32 groups) as a class, for heads that probe their norm on one
    channel: detectron2's ``RetinaNetHead`` (and so ``FCOSHead``, whose config asks for
    GN) calls ``get_norm(norm, 1)`` to read its type, which recent torch refuses for 32
    groups. On one channel this takes one group; on the head's 256 channels it is "GN"."""

    def __init__(self, num_channels: int):
        super().__init__(math.gcd(32, num_channels), num_channels)


class TopLevelMaxPool(LastLevelMaxPool):
    """detectron2's ``LastLevelMaxPool`` on the level ``in_feature`` (detectron2's reads
    ``p5``), so that the pooled level sits on top of the coarsest FPN level, whatever its
    stride (``p7`` on ``p6`` for levit's strides 16, 32 and 64)."""

    def __init__(self, in_feature: str = "p5"):
        super().__init__()
        self.in_feature = in_feature


class TimmFPN(FPN):
    """detectron2's FPN over a generated backbone, taking any input size like it.

    detectron2's FPN adds each upsampled level to the lateral one below, which only
    works on inputs that are multiples of its coarsest stride. This one pads the input to
    what both it and its bottom-up need (:attr:`size_divisibility`, reported to detectron2,
    which then pads the batch once) and fits its maps to ``ceil(input / stride)``.

    The arguments are FPN's. In a LazyConfig::

        model.backbone = L(TimmFPN)(
            bottom_up=L(ConvnextTinyBackbone)(out_features=["res2", "res3", "res4", "res5"]),
            in_features="${.bottom_up.out_features}",
            out_channels=256,
            top_block=L(TopLevelMaxPool)(in_feature="p5"),
        )
    """

    def __init__(self, bottom_up, in_features: Sequence[str], out_channels: int, **kwargs):
        super().__init__(
            bottom_up=bottom_up,
            in_features=fpn_levels(bottom_up, in_features),
            out_channels=out_channels,
            **kwargs,
        )

    @property
    def size_divisibility(self) -> int:
        return math.lcm(super().size_divisibility, self.bottom_up.size_divisibility)

    @property
    def padding_constraints(self) -> Dict[str, int]:
        return padding_constraints(
            self.size_divisibility, getattr(super(), "padding_constraints", None)
        )

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        height, width = x.shape[-2:]
        maps = super().forward(pad_to(x, *padded_size(height, width, self.size_divisibility)))
        return fit_to_input(maps, self._out_feature_strides, height, width)


def top_block_kind(cfg) -> str:
    """``MODEL.BACKBONE.CONFIG.TOP_BLOCK``, or the meta-architecture's default when unset."""
    node = cfg.MODEL.BACKBONE.get("CONFIG", None)
    kind = (node.get("TOP_BLOCK", "") if node is not None else "") or ""
    if not kind:
        return META_ARCHITECTURE_TOP_BLOCKS.get(cfg.MODEL.META_ARCHITECTURE, "maxpool")
    if kind not in TOP_BLOCKS:
        raise ValueError(
            f"MODEL.BACKBONE.CONFIG.TOP_BLOCK: {kind!r} is not valid; valid: '' (by MODEL.META_ARCHITECTURE: p6p7 "
            f"for RetinaNet, else maxpool), {', '.join(TOP_BLOCKS)}"
        )
    return kind


def top_block(
    kind: str, coarsest: str, coarsest_channels: int, coarsest_level: str, out_channels: int
):
    """The top block ``kind`` over a pyramid whose coarsest level is ``coarsest_level``
    (``p5``), built from the backbone feature ``coarsest`` (``res5``, ``coarsest_channels``
    channels) where the kind reads the backbone."""
    if kind == "maxpool":
        return TopLevelMaxPool(in_feature=coarsest_level)
    if kind == "p6p7":
        return LastLevelP6P7(coarsest_channels, out_channels, in_feature=coarsest)
    if kind == "p6p7_fpn":
        return LastLevelP6P7(out_channels, out_channels, in_feature=coarsest_level)
    raise ValueError(f"top block {kind!r} is not valid; valid: {', '.join(TOP_BLOCKS)}")


def check_head_features(cfg, neck) -> None:
    """Every level above the neck's coarsest that the config's heads read is one the top
    block gives: a clear error at build time (the key, the top block, the valid levels)
    instead of a ``KeyError`` inside a head. Finer levels follow ``MODEL.FPN.IN_FEATURES``."""
    outputs = list(neck.output_shape())
    top = max(int(name[1:]) for name in outputs)
    for key in HEAD_FEATURE_KEYS.get(cfg.MODEL.META_ARCHITECTURE, ()):
        node = cfg
        for part in key.split(".")[:-1]:
            node = node.get(part, None) if node is not None else None
        requested = list(node.get(key.rsplit(".", 1)[1], ()) if node is not None else ())
        above = [
            name for name in requested if re.fullmatch(r"p[0-9]+", name) and int(name[1:]) > top
        ]
        missing = [name for name in above if name not in outputs]
        if missing:
            raise ValueError(
                f"{key}: {', '.join(missing)} not among the outputs of {cfg.MODEL.BACKBONE.NAME} "
                f"({', '.join(outputs)}, with MODEL.BACKBONE.CONFIG.TOP_BLOCK {top_block_kind(cfg)}); "
                f"valid: a selection of {', '.join(outputs)}"
            )


def build_fpn(bottom_up, cfg):
    """The FPN variant: detectron2's FPN over ``bottom_up``, or, for one input feature
    (single-scale models), a simple feature pyramid, with the top levels the
    meta-architecture's heads read (:func:`top_block_kind`)."""
    requested = list(cfg.MODEL.FPN.IN_FEATURES) or list(bottom_up.FPN_IN_FEATURES)
    kind = top_block_kind(cfg)
    out_channels = cfg.MODEL.FPN.OUT_CHANNELS
    if len(requested) == 1:
        neck = SimpleFeaturePyramid(
            bottom_up,
            requested[0],
            out_channels=out_channels,
            norm=cfg.MODEL.FPN.NORM,
            top_block=top_block("p6p7_fpn" if kind == "p6p7" else kind, "", 0, "p5", out_channels),
        )
    else:
        shapes = bottom_up.output_shape()
        coarsest = fpn_levels(bottom_up, requested)[-1]
        neck = TimmFPN(
            bottom_up=bottom_up,
            in_features=requested,
            out_channels=out_channels,
            norm=cfg.MODEL.FPN.NORM,
            top_block=top_block(
                kind,
                coarsest,
                shapes[coarsest].channels,
                f"p{_log2(shapes[coarsest].stride)}",
                out_channels,
            ),
            fuse_type=cfg.MODEL.FPN.FUSE_TYPE,
        )
    check_head_features(cfg, neck)
    return neck
