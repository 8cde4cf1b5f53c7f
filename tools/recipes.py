"""Config recipes for the embedded shapes datasets, as command-line overrides.

A recipe is a list of ``KEY VALUE`` strings to put after a model config on the command
line of ``tools/train_net.py`` (or to ``cfg.merge_from_list``). It changes the dataset,
input size, anchors, head sizes and schedule; the backbone, its features and pixel
statistics stay as the model's config states them. ``python tools/recipes.py`` prints
the demo's recipe quoted for a shell, so that this trains what the demo trains::

    eval python tools/train_net.py --config-file configs/resnet/resnet18_fpn.yaml \\
        "$(python tools/recipes.py)" OUTPUT_DIR out/r18

:func:`shapes_opts` is the demo's recipe (CPU, 128x128 images, light heads: a Mask R-CNN
that learns the shapes in a few hundred iterations), :func:`tiny_opts` the tests' (a
few iterations of a tiny model, seconds each).
"""

from __future__ import annotations

from typing import List, Optional

__all__ = ["shapes_opts", "tiny_opts", "lazy_tiny_opts", "format_opts"]


def _pairs(**settings) -> List[str]:
    opts: List[str] = []
    for key, value in settings.items():
        opts += [key.replace("__", "."), value if isinstance(value, str) else repr(value)]
    return opts


def shapes_opts(
    *,
    dataset: str = "shapes",
    image_size: int = 128,
    max_iter: int = 600,
    ims_per_batch: int = 4,
    base_lr: float = 0.02,
    output_dir: Optional[str] = None,
    device: str = "cpu",
    seed: int = 0,
) -> List[str]:
    """Mask R-CNN on ``<dataset>_train`` / ``<dataset>_val`` (3 classes), trained from scratch."""
    opts = _pairs(
        MODEL__DEVICE=device,
        DATASETS__TRAIN=f'("{dataset}_train",)',
        DATASETS__TEST=f'("{dataset}_val",)',
        DATALOADER__NUM_WORKERS=0,  # decoding a 128px PNG is cheap; no worker process competing for cores
        INPUT__MIN_SIZE_TRAIN=f"({image_size},)",
        INPUT__MAX_SIZE_TRAIN=image_size,
        INPUT__MIN_SIZE_TEST=image_size,
        INPUT__MAX_SIZE_TEST=image_size,
        MODEL__ROI_HEADS__NUM_CLASSES=3,
        # Objects are 12% to 38% of the image: anchors from 16px at stride 4 up.
        MODEL__ANCHOR_GENERATOR__SIZES="[[16], [32], [64], [128], [256]]",
        # Light heads: most of a CPU step is FPN, RPN and mask-head convolutions.
        MODEL__FPN__OUT_CHANNELS=64,
        MODEL__RPN__PRE_NMS_TOPK_TRAIN=1000,
        MODEL__RPN__POST_NMS_TOPK_TRAIN=300,
        MODEL__RPN__PRE_NMS_TOPK_TEST=500,
        MODEL__RPN__POST_NMS_TOPK_TEST=100,
        MODEL__ROI_HEADS__BATCH_SIZE_PER_IMAGE=64,
        MODEL__ROI_BOX_HEAD__FC_DIM=256,
        MODEL__ROI_BOX_HEAD__POOLER_SAMPLING_RATIO=2,
        MODEL__ROI_MASK_HEAD__CONV_DIM=64,
        MODEL__ROI_MASK_HEAD__NUM_CONV=2,
        MODEL__ROI_MASK_HEAD__POOLER_SAMPLING_RATIO=2,
        MODEL__BACKBONE__FREEZE_AT=0,
        TEST__DETECTIONS_PER_IMAGE=20,
        TEST__EVAL_PERIOD=0,  # evaluate once, at the end
        SOLVER__IMS_PER_BATCH=ims_per_batch,
        SOLVER__BASE_LR=base_lr,
        SOLVER__MAX_ITER=max_iter,
        SOLVER__WARMUP_ITERS=max(1, max_iter // 10),
        SOLVER__STEPS=f"({int(max_iter * 0.8)},)",
        SOLVER__CHECKPOINT_PERIOD=max_iter + 1,  # no periodic copies: model_final.pth only
        SEED=seed,
    )
    if output_dir:
        opts += ["OUTPUT_DIR", str(output_dir)]
    return opts


def tiny_opts(*, max_iter: int = 5, ims_per_batch: int = 2, output_dir: Optional[str] = None) -> List[str]:
    """Seconds per run: ``shapes_tiny`` (64px), tiny heads; every prediction kept so that a
    barely trained model still produces detections to evaluate and draw."""
    opts = shapes_opts(dataset="shapes_tiny", image_size=64, max_iter=max_iter, ims_per_batch=ims_per_batch)
    opts += _pairs(
        MODEL__FPN__OUT_CHANNELS=16,
        MODEL__RPN__PRE_NMS_TOPK_TRAIN=200,
        MODEL__RPN__POST_NMS_TOPK_TRAIN=50,
        MODEL__RPN__PRE_NMS_TOPK_TEST=100,
        MODEL__RPN__POST_NMS_TOPK_TEST=30,
        MODEL__ROI_HEADS__BATCH_SIZE_PER_IMAGE=16,
        MODEL__ROI_HEADS__SCORE_THRESH_TEST=0.0,
        MODEL__ROI_BOX_HEAD__FC_DIM=32,
        MODEL__ROI_MASK_HEAD__CONV_DIM=16,
        MODEL__ROI_MASK_HEAD__NUM_CONV=1,
        TEST__DETECTIONS_PER_IMAGE=10,
        SOLVER__BASE_LR=0.01,
    )
    if output_dir:
        opts += ["OUTPUT_DIR", str(output_dir)]
    return opts


def lazy_tiny_opts(*, max_iter: int = 5, ims_per_batch: int = 2, output_dir: Optional[str] = None) -> List[str]:
    """:func:`tiny_opts` for a LazyConfig seed (``configs/<family>/<model>_mask_rcnn.py``), as
    ``key=value`` overrides: ``shapes_tiny`` at 64px instead of large-scale jitter at 1024,
    three classes, few proposals, float32 on the CPU, evaluated once at the end."""
    size = 64
    settings = {
        "train.device": "cpu",
        "train.max_iter": max_iter,
        "train.eval_period": 0,
        "train.checkpointer.period": max_iter + 1,
        "train.log_period": 1,
        "dataloader.train.dataset.names": "shapes_tiny_train",
        "dataloader.test.dataset.names": "shapes_tiny_val",
        "dataloader.train.total_batch_size": ims_per_batch,
        "dataloader.train.num_workers": 0,
        "dataloader.test.num_workers": 0,
        "dataloader.train.mapper.augmentations.0.target_height": size,
        "dataloader.train.mapper.augmentations.0.target_width": size,
        "dataloader.train.mapper.augmentations.1.crop_size": [size, size],
        "dataloader.test.mapper.augmentations.0.short_edge_length": size,
        "dataloader.test.mapper.augmentations.0.max_size": size,
        "model.roi_heads.num_classes": 3,
        "model.roi_heads.batch_size_per_image": 16,
        "model.roi_heads.box_predictor.test_score_thresh": 0.0,
        "model.roi_heads.box_predictor.test_topk_per_image": 10,
        "model.proposal_generator.pre_nms_topk": [200, 100],
        "model.proposal_generator.post_nms_topk": [50, 30],
        "optimizer.lr": 0.01,
    }
    if output_dir:
        settings["train.output_dir"] = str(output_dir)
    return [f"{key}={value}".replace(" ", "") for key, value in settings.items()]


def format_opts(opts: List[str]) -> str:
    """The overrides quoted for a POSIX shell."""
    import shlex

    return " ".join(shlex.quote(o) for o in opts)


if __name__ == "__main__":
    print(format_opts(shapes_opts()))
