"""Mask R-CNN on timm's deit_tiny_distilled_patch16_224 (deit), as a detectron2 LazyConfig.

Seeded by d2timm-gen and then yours to edit: regeneration never overwrites this file;
`d2timm-gen check` reports it as STALE_SEED when the generated default changes.

detectron2's own pieces: the Mask R-CNN of common/models/mask_rcnn_fpn.py and the
training recipe of new_baselines/mask_rcnn_R_50_FPN_100ep_LSJ.py (large-scale jitter,
SyncBN, mixed precision, 100 epochs of COCO), with deit_tiny_distilled_patch16_224 as
the backbone (a simple feature pyramid from stage11), timm's pixel statistics and the
model's input size. Train and evaluate it with::

    .venv/bin/python tools/train_net.py --config-file configs/deit/deit_tiny_distilled_patch16_224_mask_rcnn.py
"""

import detectron2.data.transforms as T
from detectron2.config import LazyCall as L
from detectron2.model_zoo import get_config

from generated.deit.deit_tiny_distilled_patch16_224 import DeitTinyDistilledPatch16224Backbone
from generated.runtime import SimpleFeaturePyramid

recipe = get_config("new_baselines/mask_rcnn_R_50_FPN_100ep_LSJ.py")
dataloader = recipe.dataloader
lr_multiplier = recipe.lr_multiplier
model = recipe.model
optimizer = recipe.optimizer
train = recipe.train

# Any input size. The backbone pads each input (bottom and right) to a multiple of 16
# and crops the maps to ceil(input / stride). Its size_divisibility is 16 (32 for the
# FPN variant): detectron2 pads each batch to that, so the backbone's own padding copies
# nothing. timm builds it with dynamic_img_size=True.
image_size = 1024

# A simple feature pyramid (ViTDet style) reads stage11 (stride 16), since every level
# has the same stride:
# it resamples that map to p2..p5 (strides 4, 8, 16, 32) and max-pools p6 (64).
model.backbone = L(SimpleFeaturePyramid)(
    bottom_up=L(DeitTinyDistilledPatch16224Backbone)(
        out_feature="stage11",
        freeze_at=0,
        pretrained=False,  # True: timm's hub weights; or the path of a timm checkpoint
    ),
    in_feature="${.bottom_up.out_feature}",
    out_channels=256,
    norm="LN",
)
# The recipe's norm of the box and mask heads, by its name in detectron2's get_norm (the
# recipe's lambda cannot be saved as YAML, and output_dir/config.yaml then cannot load).
model.roi_heads.box_head.conv_norm = "naiveSyncBN_N"
model.roi_heads.mask_head.conv_norm = "naiveSyncBN_N"
# timm's pretrained_cfg statistics, times 255, in RGB order: detectron2's defaults are
# BGR caffe statistics and would silently hurt accuracy.
model.pixel_mean = [123.675, 116.28, 103.53]
model.pixel_std = [58.395, 57.12, 57.375]
model.input_format = "RGB"

# Large-scale jitter at the model's detection size, padded to a square as in ViTDet; the
# test resize of deit_tiny_distilled_patch16_224_fpn.yaml.
dataloader.train.mapper.augmentations = [
    L(T.ResizeScale)(
        min_scale=0.1, max_scale=2.0, target_height=image_size, target_width=image_size
    ),
    L(T.FixedSizeCrop)(crop_size=(image_size, image_size)),
    L(T.RandomFlip)(horizontal=True),
]
dataloader.train.mapper.image_format = "RGB"
dataloader.test.mapper.augmentations = [
    L(T.ResizeShortestEdge)(short_edge_length=800, max_size=1333),
]
