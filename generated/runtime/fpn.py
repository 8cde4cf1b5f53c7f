"""The FPN variant of a generated backbone, built on detectron2's own FPN."""

import math
from typing import Dict, Optional, Sequence

import torch
from detectron2.modeling.backbone.fpn import FPN, LastLevelMaxPool

from .padding import fit_to_input, pad_to, padded_size, padding_constraints
from .pyramid import SimpleFeaturePyramid

__all__ = ["SimpleFeaturePyramid", "TimmFPN", "TopLevelMaxPool", "build_fpn", "fpn_levels"]


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


def build_fpn(bottom_up, cfg):
    """The FPN variant: detectron2's FPN over ``bottom_up`` with a max-pooled extra level
    on top of its coarsest level, or, for one input feature (single-scale models), a
    simple feature pyramid."""
    requested = list(cfg.MODEL.FPN.IN_FEATURES) or list(bottom_up.FPN_IN_FEATURES)
    if len(requested) == 1:
        return SimpleFeaturePyramid(
            bottom_up,
            requested[0],
            out_channels=cfg.MODEL.FPN.OUT_CHANNELS,
            norm=cfg.MODEL.FPN.NORM,
        )
    coarsest = max(
        bottom_up.output_shape()[name].stride for name in fpn_levels(bottom_up, requested)
    )
    return TimmFPN(
        bottom_up=bottom_up,
        in_features=requested,
        out_channels=cfg.MODEL.FPN.OUT_CHANNELS,
        norm=cfg.MODEL.FPN.NORM,
        top_block=TopLevelMaxPool(in_feature=f"p{_log2(coarsest)}"),
        fuse_type=cfg.MODEL.FPN.FUSE_TYPE,
    )
