"""A simple feature pyramid from one feature map (ViTDet style), for every detectron2.

Single-scale models (ViT, DeiT, BEiT, EVA, CaiT, XCiT, ...) and models whose strides do
not suit detectron2's FPN give one map. This pyramid turns it into p2..p5 at strides 4,
8, 16 and 32 (and p6 at 64 by max-pooling), with transposed convolutions up and pooling
down as in ViTDet (Li et al., 2022). The input is padded to a multiple of the coarsest
stride, so every level is exactly input / stride, and the maps are then fitted to
``ceil(input / stride)`` (``runtime/padding.py``). When the input stride is not a power of
two (a patch-14 or stride-7 model), the backbone pads further to what it needs and each
level is resampled to exactly input / stride, so the strides stay powers of two. detectron2 v0.6 has no
``SimpleFeaturePyramid``; this one is self-contained.
"""

import math
from typing import Dict, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from detectron2.layers import Conv2d, ShapeSpec
from detectron2.modeling import Backbone
from torch import nn

from .padding import ceil_div, exporting, fit_to_input, pad_to, padded_size, padding_constraints

__all__ = ["SimpleFeaturePyramid"]


def _norm(kind: str, channels: int) -> Optional[nn.Module]:
    if kind == "":
        return None
    if kind == "LN":
        from timm.layers import LayerNorm2d

        return LayerNorm2d(channels)
    if kind == "GN":
        return nn.GroupNorm(32, channels)
    if kind == "BN":
        return nn.BatchNorm2d(channels)
    raise ValueError(
        f"MODEL.FPN.NORM: {kind!r} is not supported by the simple pyramid; valid: '', LN, GN, BN"
    )


class _MaxPoolLevel(nn.Module):
    """One level above ``in_feature`` by max-pooling (detectron2's ``LastLevelMaxPool``)."""

    num_levels = 1

    def __init__(self, in_feature: str):
        super().__init__()
        self.in_feature = in_feature

    def forward(self, x: torch.Tensor):
        return [F.max_pool2d(x, kernel_size=1, stride=2, padding=0)]


class SimpleFeaturePyramid(Backbone):
    """p2..p5 (and p6) from the single feature ``in_feature`` of ``bottom_up``."""

    def __init__(
        self,
        bottom_up: Backbone,
        in_feature: str,
        out_channels: int = 256,
        strides: Sequence[int] = (4, 8, 16, 32),
        norm: str = "LN",
        top_block: Union[bool, nn.Module, None] = True,
    ):
        """
        Args:
            top_block: levels above the coarsest, as detectron2's FPN takes them: a module
                with ``num_levels`` and ``in_feature`` (one of this pyramid's levels, such
                as ``LastLevelP6P7(256, 256, in_feature="p5")``); True for one max-pooled
                level (``p6``); False or None for none.
        """
        super().__init__()
        shapes = bottom_up.output_shape()
        if in_feature not in shapes:
            raise ValueError(
                f"MODEL.FPN.IN_FEATURES: {in_feature!r} is not an output of the backbone; valid: {', '.join(shapes)}"
            )
        self.bottom_up = bottom_up
        self.in_feature = in_feature
        channels, stride = shapes[in_feature].channels, shapes[in_feature].stride
        #: A power-of-two input stride: pooling and transposed convolutions give every level
        #: its exact size on the padded input; another (patch 14) is resized to it.
        self._exact = stride & (stride - 1) == 0
        self.stages = nn.ModuleList()
        #: Per level, whether its stage's output is resized to it: up to two transposed
        #: convolutions or one pooling reach a level 4x finer or coarser, exactly only
        #: from a power-of-two stride (stride 32 gives p2 at stride 8, resized).
        self._resized = []
        self._strides = tuple(strides)
        for target in self._strides:
            steps = max(-2, min(2, round(math.log2(stride / target))))
            self._resized.append(not self._exact or stride != target * 2**steps)
            layers, dim = [], channels
            for step in range(max(steps, 0)):
                layers.append(nn.ConvTranspose2d(dim, dim // 2, kernel_size=2, stride=2))
                dim //= 2
                if step < steps - 1:
                    layers += [_norm("LN", dim), nn.GELU()]
            if steps < 0:
                layers.append(nn.MaxPool2d(kernel_size=2 ** (-steps), stride=2 ** (-steps)))
            layers += [
                Conv2d(
                    dim,
                    out_channels,
                    kernel_size=1,
                    bias=norm == "",
                    norm=_norm(norm, out_channels),
                ),
                Conv2d(
                    out_channels,
                    out_channels,
                    kernel_size=3,
                    padding=1,
                    bias=norm == "",
                    norm=_norm(norm, out_channels),
                ),
            ]
            self.stages.append(nn.Sequential(*[layer for layer in layers if layer is not None]))
        names = [f"p{int(math.log2(s))}" for s in self._strides]
        if top_block is True:
            top_block = _MaxPoolLevel(names[-1])
        top_block = top_block if isinstance(top_block, nn.Module) else None
        if top_block is not None and top_block.in_feature not in names:
            raise ValueError(
                f"the top block reads {top_block.in_feature!r}, which the simple pyramid does not give; "
                f"valid: {', '.join(names)}"
            )
        self.top_block = top_block
        all_strides = list(self._strides)
        for _ in range(self.top_block.num_levels if self.top_block is not None else 0):
            names.append(f"p{int(math.log2(all_strides[-1])) + 1}")
            all_strides.append(all_strides[-1] * 2)
        self._out_features = names
        self._out_feature_strides = dict(zip(names, all_strides))
        self._out_feature_channels = {name: out_channels for name in names}

    @property
    def size_divisibility(self) -> int:
        """Multiples of the coarsest level's stride, on which every level is exactly twice
        the next (detectron2's semantic heads add them). For a power-of-two input stride,
        of the bottom-up's too (pooling and transposed convolutions then give exact
        sizes); for another (patch 14), the bottom-up pads what it needs itself."""
        return (
            math.lcm(self.bottom_up.size_divisibility, self._strides[-1])
            if self._exact
            else self._strides[-1]
        )

    @property
    def padding_constraints(self) -> Dict[str, int]:
        return padding_constraints(self.size_divisibility)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        height, width = x.shape[-2:]
        x = pad_to(x, *padded_size(height, width, self.size_divisibility))
        padded_h, padded_w = x.shape[-2:]
        feature = self.bottom_up(x)[self.in_feature]
        results = []
        for target, stage, resized in zip(self._strides, self.stages, self._resized):
            out = stage(feature)
            size = (ceil_div(padded_h, target), ceil_div(padded_w, target))
            # Traced sizes are symbolic: whether a level needs the resize is then the structural
            # fact (``self._resized``), not this example's shapes.
            if resized if exporting() else tuple(out.shape[-2:]) != size:
                out = F.interpolate(out, size=size, mode="bilinear", align_corners=False)
            results.append(out)
        if self.top_block is not None:
            results.extend(
                self.top_block(results[self._out_features.index(self.top_block.in_feature)])
            )
        return fit_to_input(
            dict(zip(self._out_features, results)), self._out_feature_strides, height, width
        )

    def output_shape(self) -> Dict[str, ShapeSpec]:
        return {
            name: ShapeSpec(
                channels=self._out_feature_channels[name], stride=self._out_feature_strides[name]
            )
            for name in self._out_features
        }
