"""Small stand-ins for the detectors people plug backbones into, where the real project
cannot be installed here (detrex and DETR are on GitHub only, which these machines cannot
reach). Each reproduces what its project does with a backbone, written from that
project's documented behaviour, and nothing else:

- :class:`ChannelMapper` (detrex's neck): one 1x1 convolution per level of
  ``in_features``, in that order, with the input channels of ``input_shapes``; extra
  levels by stride-2 convolutions on the last; it requires exactly as many inputs as
  levels.
- :class:`DINO` (detrex's DINO, as far as the backbone goes): pads the batch only to its
  largest image (``ImageList.from_tensors(images)``, no size divisibility), runs the
  backbone and the neck, and resizes the image padding mask to each level's size.
- :class:`MaskedBackbone` (DETR's ``d2/detr/detr.py``): builds the backbone from a
  detectron2 config by name, reads ``output_shape()`` in order, takes the channels of the
  last level, and masks each level from ``ceil(image / stride)``.

What they prove: the generated backbones give these clients the levels, channels and map
sizes they expect, for batches padded only to their largest image. What they do not:
the transformers, losses and matchers of DINO and DETR are not here.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from detectron2.layers import ShapeSpec
from detectron2.structures import ImageList
from torch import nn


class ChannelMapper(nn.Module):
    def __init__(self, input_shapes: Dict[str, ShapeSpec], in_features: List[str], out_channels: int,
                 num_outs: Optional[int] = None, **ignored):  # fmt: skip
        super().__init__()
        self.in_features = list(in_features)
        self.convs = nn.ModuleList(nn.Conv2d(input_shapes[f].channels, out_channels, 1) for f in self.in_features)
        extra = (num_outs or len(in_features)) - len(in_features)
        channels = [input_shapes[self.in_features[-1]].channels] + [out_channels] * (extra - 1)
        self.extra_convs = nn.ModuleList(nn.Conv2d(c, out_channels, 3, stride=2, padding=1) for c in channels[:extra])

    def forward(self, inputs: Dict[str, torch.Tensor]) -> List[torch.Tensor]:
        assert len(inputs) == len(self.convs), f"{len(inputs)} backbone levels for {len(self.convs)} inputs"
        outs = [conv(inputs[name]) for conv, name in zip(self.convs, self.in_features)]
        for i, conv in enumerate(self.extra_convs):
            outs.append(conv(inputs[self.in_features[-1]] if i == 0 else outs[-1]))
        return outs


class DINO(nn.Module):
    def __init__(self, backbone: nn.Module, neck: nn.Module, pixel_mean, pixel_std, input_format: str = "RGB",
                 **ignored):  # fmt: skip
        super().__init__()
        self.backbone, self.neck, self.input_format = backbone, neck, input_format
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)

    def forward(self, batched_inputs):
        images = ImageList.from_tensors([(x["image"] - self.pixel_mean) / self.pixel_std for x in batched_inputs])
        batch, _, height, width = images.tensor.shape
        masks = images.tensor.new_ones(batch, height, width)
        for i, (h, w) in enumerate(images.image_sizes):
            masks[i, :h, :w] = 0
        features = self.neck(self.backbone(images.tensor))
        level_masks = [F.interpolate(masks[None], size=f.shape[-2:]).to(torch.bool)[0] for f in features]
        return images, features, level_masks


class MaskedBackbone(nn.Module):
    def __init__(self, cfg):
        from detectron2.modeling import build_backbone

        super().__init__()
        self.backbone = build_backbone(cfg)
        shapes = self.backbone.output_shape()
        self.feature_strides = [shapes[name].stride for name in shapes]
        self.num_channels = shapes[list(shapes)[-1]].channels

    def forward(self, images: ImageList):
        features = self.backbone(images.tensor)
        masks = []
        for stride, feature in zip(self.feature_strides, features.values()):
            n, _, h, w = feature.shape
            mask = torch.ones((n, h, w), dtype=torch.bool, device=feature.device)
            for i, (image_h, image_w) in enumerate(images.image_sizes):
                mask[i, : math.ceil(image_h / stride), : math.ceil(image_w / stride)] = False
            masks.append(mask)
        assert len(features) == len(masks)
        return features, masks
