"""Mask R-CNN on timm's halo2botnet50ts_256 (byoanet), as a detectron2 LazyConfig.

Seeded by d2timm-gen and then yours to edit: regeneration never overwrites this file;
`d2timm-gen check` reports it as STALE_SEED when the generated default changes.

detectron2's own pieces: the Mask R-CNN of common/models/mask_rcnn_fpn.py and the
training recipe of new_baselines/mask_rcnn_R_50_FPN_100ep_LSJ.py (large-scale jitter,
SyncBN, mixed precision, 100 epochs of COCO), with halo2botnet50ts_256 as the backbone
(an FPN over res2, res3, res4, res5), timm's pixel statistics and the model's input
size. Train and evaluate it with::

    .venv/bin/python tools/train_net.py --config-file configs/byoanet/halo2botnet50ts_256_mask_rcnn.py
"""

import detectron2.data.transforms as T
from detectron2.config import LazyCall as L
from detectron2.model_zoo import get_config

from generated.byoanet.halo2botnet50ts_256 import Halo2botnet50ts256Backbone
from generated.runtime import TimmFPN, TopLevelMaxPool

recipe = get_config("new_baselines/mask_rcnn_R_50_FPN_100ep_LSJ.py")
dataloader = recipe.dataloader
lr_multiplier = recipe.lr_multiplier
model = recipe.model
optimizer = recipe.optimizer
train = recipe.train

# One input size: timm has no dynamic input size for it, but builds it at other sizes.
# Pretrained at 256x256, it is built at 1024x1024 for detection
# (MODEL.BACKBONE.CONFIG.IMG_SIZE, any multiple of 128), and every input up to that size
# is padded to it. Its size_divisibility is 1024: detectron2 pads each batch to that, so
# the backbone's own padding copies nothing. A checkpoint saved at 256x256 loads through
# PRETRAINED with these parameters resampled to the model's size (GRID_PARAMS,
# runtime/resample.py): stages.*.*.self_attn.pos_embed.height_rel (line),
# stages.*.*.self_attn.pos_embed.width_rel (line).
image_size = 1024

# detectron2's FPN reads res2 (stride 4), res3 (stride 8), res4 (stride 16), res5
# (stride 32): strides that are powers of two, each twice the previous.
model.backbone = L(TimmFPN)(
    bottom_up=L(Halo2botnet50ts256Backbone)(
        out_features=["res2", "res3", "res4", "res5"],
        freeze_at=0,
        pretrained=False,  # True: timm's hub weights; or the path of a timm checkpoint
        img_size=image_size,
    ),
    in_features="${.bottom_up.out_features}",
    out_channels=256,
    norm="SyncBN",
    top_block=L(TopLevelMaxPool)(in_feature="p5"),
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
# test resize of halo2botnet50ts_256_fpn.yaml.
dataloader.train.mapper.augmentations = [
    L(T.ResizeScale)(
        min_scale=0.1, max_scale=2.0, target_height=image_size, target_width=image_size
    ),
    L(T.FixedSizeCrop)(crop_size=(image_size, image_size)),
    L(T.RandomFlip)(horizontal=True),
]
dataloader.train.mapper.image_format = "RGB"
dataloader.test.mapper.augmentations = [
    L(T.ResizeShortestEdge)(short_edge_length=1024, max_size=1024),
]
