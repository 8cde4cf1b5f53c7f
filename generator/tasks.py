"""The detectron2 tasks a model can be seeded for (``d2timm-gen seed MODEL --task TASK``).

Each task follows one of detectron2's own model-zoo configs: its seed holds the keys that
config sets on top of detectron2's Mask R-CNN FPN base, and the levels its heads read,
computed from the model's FPN levels. A YAML seed ``_BASE_``s the model's own
``<model>_fpn.yaml``, so the backbone's facts stay stated once; a LazyConfig seed starts
from the zoo's LazyConfig and swaps its backbone. The training-recipe seed imports the
model's Mask R-CNN LazyConfig seed and trains it as ViTDet trains its ViTs
(:data:`VITDET_RECIPES`).

Pure data and small pure functions: no torch, no timm, no detectron2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

from .spec import ModelSpec, SpecError

__all__ = [
    "FORMATS",
    "REQUEST_PATTERN",
    "TASKS",
    "Recipe",
    "Task",
    "TaskLevels",
    "VITDET_RECIPES",
    "check_model_takes",
    "checkpoint_in_recipe",
    "check_request",
    "parse_request",
    "request",
    "retinanet_anchor_sizes",
    "seed_file",
    "seed_path",
    "task_levels",
    "training_recipe",
]

FORMATS = ("yaml", "py")
#: A seed request recorded in the manifest's selection: ``MODEL:TASK:FORMAT``.
REQUEST_PATTERN = re.compile(r"(?P<model>[a-z][a-z0-9_]{0,99}):(?P<task>[a-z][a-z0-9_]{0,31}):(?P<fmt>yaml|py)\Z")

#: RetinaNet and FCOS read the FPN from stride 8 (detectron2's ``res3``) upwards.
ONE_STAGE_MIN_STRIDE = 8
#: RetinaNet's anchors: three scales per octave from 4x each level's stride (detectron2's
#: ``[[x, x * 2 ** (1 / 3), x * 2 ** (2 / 3)] for x in [32, 64, 128, 256, 512]]``).
RETINANET_SCALES = (0.0, 1.0 / 3, 2.0 / 3)
RETINANET_ANCHOR_PER_STRIDE = 4


@dataclass(frozen=True)
class Task:
    """One detectron2 task: the zoo configs it follows and how its heads read the FPN."""

    name: str
    summary: str
    heads: str  # "rcnn", "one_stage", "semantic" or "dilated": which levels the heads read
    zoo_yaml: str = ""  # the model-zoo YAML config it follows ("" if none)
    zoo_py: str = ""  # the model-zoo LazyConfig it follows ("" if none)

    @property
    def formats(self) -> Tuple[str, ...]:
        return tuple(fmt for fmt, zoo in (("yaml", self.zoo_yaml), ("py", self.zoo_py)) if zoo)


TASKS: Dict[str, Task] = {
    task.name: task
    for task in (
        Task(
            "cascade_mask_rcnn",
            "Cascade Mask R-CNN",
            "rcnn",
            zoo_yaml="Misc/cascade_mask_rcnn_R_50_FPN_1x.yaml",
        ),
        Task(
            "deeplab",
            "DeepLabV3 (semantic segmentation on the dilated coarsest level, output stride 16)",
            "dilated",
            zoo_yaml="projects/DeepLab/configs/Cityscapes-SemanticSegmentation/Base-DeepLabV3-OS16-Semantic.yaml",
        ),
        Task(
            "faster_rcnn",
            "Faster R-CNN (boxes only)",
            "rcnn",
            zoo_yaml="COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml",
        ),
        Task(
            "fcos",
            "FCOS (anchor-free one-stage detector)",
            "one_stage",
            zoo_py="COCO-Detection/fcos_R_50_FPN_1x.py",
        ),
        Task(
            "keypoint_rcnn",
            "Keypoint R-CNN (COCO person keypoints)",
            "rcnn",
            zoo_yaml="COCO-Keypoints/keypoint_rcnn_R_50_FPN_1x.yaml",
            zoo_py="COCO-Keypoints/keypoint_rcnn_R_50_FPN_1x.py",
        ),
        Task(
            "lvis_mask_rcnn",
            "Mask R-CNN on LVIS v1 (repeat-factor sampling)",
            "rcnn",
            zoo_yaml="LVISv1-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml",
        ),
        Task(
            "mask_rcnn",
            "Mask R-CNN (the seeds `generate` writes: <model>_fpn.yaml, <model>_mask_rcnn.py)",
            "rcnn",
            zoo_yaml="COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml",
            zoo_py="new_baselines/mask_rcnn_R_50_FPN_100ep_LSJ.py",
        ),
        Task(
            "mask_rcnn_vitdet",
            "Mask R-CNN trained with ViTDet's recipe (AdamW, layer-wise lr decay, drop path)",
            "rcnn",
            zoo_py="new_baselines/mask_rcnn_R_50_FPN_100ep_LSJ.py",
        ),
        Task(
            "panoptic_fpn",
            "Panoptic FPN (instances and stuff)",
            "rcnn",
            zoo_yaml="COCO-PanopticSegmentation/panoptic_fpn_R_50_1x.yaml",
            zoo_py="COCO-PanopticSegmentation/panoptic_fpn_R_50_1x.py",
        ),
        Task(
            "retinanet",
            "RetinaNet (one-stage detector, P3-P7)",
            "one_stage",
            zoo_yaml="COCO-Detection/retinanet_R_50_FPN_1x.yaml",
            zoo_py="COCO-Detection/retinanet_R_50_FPN_1x.py",
        ),
        Task(
            "semantic_fpn",
            "Semantic FPN (semantic segmentation, COCO stuff)",
            "semantic",
            zoo_yaml="Misc/semantic_R_50_FPN_1x.yaml",
        ),
    )
}


@dataclass(frozen=True)
class Recipe:
    """ViTDet's training recipe for one depth of ViT (detectron2's
    ``projects/ViTDet/configs/COCO/mask_rcnn_vitdet_{b,l,h}_100ep.py``), on top of the LSJ
    recipe the Mask R-CNN seed has (1024 squares, 100 epochs, mixed precision)."""

    name: str
    blocks: int  # the depth of that ViT
    lr_decay: float
    drop_path_rate: float


#: ViT-B, ViT-L and ViT-H; the AdamW and schedule they share are the template's.
VITDET_RECIPES = (
    Recipe("ViT-B", 12, 0.7, 0.1),
    Recipe("ViT-L", 24, 0.8, 0.4),
    Recipe("ViT-H", 32, 0.9, 0.5),
)


def training_recipe(spec: ModelSpec) -> Recipe:
    """ViTDet's recipe for the first of its ViTs at least as deep as ``spec``: the depth is
    timm's layering less the stem's layer (ViT-B has 13 layers: the patch embedding and 12
    blocks), so the stem's lr factor ``lr_decay ** depth`` stays where ViTDet put it. A
    model timm gives no layering gets ViT-B's."""
    depth = spec.facts.num_layers - 1
    return next((recipe for recipe in VITDET_RECIPES if depth <= recipe.blocks), VITDET_RECIPES[-1])


def checkpoint_in_recipe(spec: ModelSpec) -> bool:
    """Whether the recipe seed checkpoints activations: a single-scale model built at one
    size mixes every token of the 64x64 grid of a 1024 square in every block (global
    attention with position tables sized for it, or token mixing). Measured by
    tools/dev/bench_memory.py (one Mask R-CNN step on one 1024 square, CPU):
    beit_base_patch16_224 16.8 GB without, 6.4 GB with; vit_base_patch16_224 (global
    attention, no position bias) 5.2 GB without."""
    return spec.pyramid == "simple" and spec.facts.fixed_input_size


#: DeepLab's output stride: the coarsest level dilated to stride 16.
DEEPLAB_OUTPUT_STRIDE = 16


def check_model_takes(spec_facts_output_strides: Sequence[int], model: str, task: str) -> None:
    """A dilated task needs a model that timm dilates; SpecError saying so otherwise."""
    if TASKS[task].heads == "dilated" and DEEPLAB_OUTPUT_STRIDE not in spec_facts_output_strides:
        raise SpecError(
            f"task {task} needs a backbone timm dilates to output stride {DEEPLAB_OUTPUT_STRIDE}; {model} takes "
            f"none (`d2timm-gen show MODEL` says which do: `output strides`, and generated/SUPPORT.md lists them)"
        )


def request(model: str, task: str, fmt: str) -> str:
    return f"{model}:{task}:{fmt}"


def check_request(model: str, task: str, fmt: str) -> str:
    """The request string for a valid (model, task, format); SpecError naming the bad
    value and the valid ones otherwise."""
    if task not in TASKS:
        raise SpecError(f"unknown task {task!r}; valid: {', '.join(sorted(TASKS))}")
    if fmt not in TASKS[task].formats:
        raise SpecError(
            f"task {task} has no {fmt} seed (detectron2's model zoo has none to follow); valid: "
            f"{', '.join(TASKS[task].formats)}"
        )
    text = request(model, task, fmt)
    if not REQUEST_PATTERN.match(text):
        raise SpecError(f"invalid seed request {text!r}")
    return text


def parse_request(text: str) -> Tuple[str, str, str]:
    match = REQUEST_PATTERN.match(text)
    if not match:
        raise SpecError(f"seed request {text!r} in the manifest is not MODEL:TASK:FORMAT")
    model, task, fmt = match.group("model", "task", "fmt")
    check_request(model, task, fmt)
    return model, task, fmt


def seed_file(family: str, model: str, task: str, fmt: str) -> str:
    """Where a task seed lives, relative to the configs folder. Mask R-CNN's are the
    seeds ``generate`` writes for every model."""
    if task == "mask_rcnn":
        return f"{family}/{model}_fpn.yaml" if fmt == "yaml" else f"{family}/{model}_mask_rcnn.py"
    return f"{family}/{model}_{task}.{fmt}"


def seed_path(spec: ModelSpec, task: str, fmt: str) -> str:
    return seed_file(spec.family, spec.name, task, fmt)


@dataclass(frozen=True)
class TaskLevels:
    """What a task's neck and heads read for one model."""

    fpn_in_features: Tuple[str, ...]  # MODEL.FPN.IN_FEATURES
    head_levels: Tuple[int, ...]  # log2 strides of the levels the heads read
    top_levels: int  # how many of those the top block adds

    @property
    def head_features(self) -> List[str]:
        return [f"p{k}" for k in self.head_levels]

    @property
    def strides(self) -> List[int]:
        return [2**k for k in self.head_levels]


def _pyramid_levels(spec: ModelSpec, fpn_in_features: Sequence[str]) -> List[int]:
    """log2 strides of the pyramid levels (before the top block) over ``fpn_in_features``."""
    if spec.pyramid == "simple":
        return [2, 3, 4, 5]
    return [spec.feature(name).stride.bit_length() - 1 for name in fpn_in_features]


def task_levels(spec: ModelSpec, task: str) -> TaskLevels:
    """The FPN inputs and head levels of ``task`` for ``spec``: R-CNN heads and semantic
    heads read every FPN level (R-CNN's RPN also the max-pooled one on top); one-stage
    detectors read the levels from stride 8 and two more from P6/P7 (detectron2 builds
    them on ``res3``..``res5``)."""
    kind = TASKS[task].heads
    inputs = tuple(spec.fpn_in_features)
    if kind == "one_stage" and spec.pyramid == "fpn":
        coarse = tuple(n for n in inputs if spec.feature(n).stride >= ONE_STAGE_MIN_STRIDE)
        inputs = coarse if len(coarse) >= 2 else inputs
    levels = _pyramid_levels(spec, inputs)
    if kind == "one_stage":
        levels = [k for k in levels if 2**k >= ONE_STAGE_MIN_STRIDE] or levels
        top = 2
    else:
        top = 1
    return TaskLevels(inputs, tuple(levels + [levels[-1] + i for i in range(1, top + 1)]), top)


def retinanet_anchor_sizes(levels: TaskLevels) -> List[List[float]]:
    sizes = []
    for stride in levels.strides:
        base = RETINANET_ANCHOR_PER_STRIDE * stride
        sizes.append([base * 2**scale if scale else base for scale in RETINANET_SCALES])
    return sizes


