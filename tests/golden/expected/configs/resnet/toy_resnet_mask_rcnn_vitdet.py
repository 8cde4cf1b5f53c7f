"""Mask R-CNN trained with ViTDet's recipe (AdamW, layer-wise lr decay, drop path) on timm's toy_resnet (resnet), as a detectron2 LazyConfig.

Seeded by `d2timm-gen seed toy_resnet --task mask_rcnn_vitdet` and then yours to edit:
regeneration never overwrites this file; `d2timm-gen check` reports it as STALE_SEED when
the generated default changes.

The model, data and schedule of toy_resnet_mask_rcnn.py beside it (detectron2's LSJ
recipe at 1024, 100 epochs of COCO, mixed precision), trained the way detectron2's
ViTDet trains its ViTs (projects/ViTDet/configs/COCO/mask_rcnn_vitdet_*_100ep.py):
timm's pretrained weights, AdamW, layer-wise lr decay over timm's own layering, no
weight decay for what timm exempts, drop path and a short warmup. Train and evaluate it
with::

    .venv/bin/python tools/train_net.py --config-file configs/resnet/toy_resnet_mask_rcnn_vitdet.py
"""

import torch
from detectron2.config import LazyCall as L
from detectron2.solver import WarmupParamScheduler
from fvcore.common.param_scheduler import MultiStepParamScheduler

from golden_pkg.runtime import optimizer_params

from .toy_resnet_mask_rcnn import dataloader, model, train

# ViTDet's ViT-B recipe, the first of its ViTs (ViT-B: 12 blocks, lr decay 0.7, drop
# path 0.1; ViT-L: 24 blocks, lr decay 0.8, drop path 0.4; ViT-H: 32 blocks, lr decay
# 0.9, drop path 0.5) at least as deep as this model: timm gives toy_resnet no layering,
# so ViT-B's.
model.backbone.bottom_up.pretrained = True  # timm's hub weights; or the path of a timm checkpoint
# No drop path: timm builds toy_resnet without stochastic depth (DROP_PATH_RATE is refused).
# Activation checkpointing trades time for memory (tools/dev/bench_memory.py measures both
# for this model); True recomputes every block's activations in the backward pass.
model.backbone.bottom_up.activation_checkpoint = False

# No layer-wise lr decay: timm gives toy_resnet no layering.
optimizer = L(torch.optim.AdamW)(
    params=L(optimizer_params)(
        base_lr="${..lr}",
        weight_decay_norm=0.0,
        lr_decay=1.0,
    ),
    lr=1e-4,
    betas=(0.9, 0.999),
    weight_decay=0.1,
)

# ViTDet's schedule: the LSJ recipe's 100 epochs and steps, with its 250-iteration warmup.
lr_multiplier = L(WarmupParamScheduler)(
    scheduler=L(MultiStepParamScheduler)(
        values=[1.0, 0.1, 0.01],
        milestones=[163889, 177546],
        num_updates=train.max_iter,
    ),
    warmup_length=250 / train.max_iter,
    warmup_factor=0.001,
)
