"""Every detectron2 meta-architecture, not only Mask R-CNN (generator/tasks.py).

- detectron2's own model-zoo YAML configs take a generated backbone with nothing but the
  backbone keys of ``configs/resnet/resnet18_fpn.yaml`` swapped in, and infer (RetinaNet,
  which reads p3..p7, also trains);
- the seeds of ``d2timm-gen seed MODEL --task TASK`` hold exactly the zoo config's keys,
  but for the backbone's and the levels the model gives (compared key by key with the
  zoo config itself);
- for a sample of five models, each with every task once (each format of a task with two
  models or more), the task builds from its seed (YAML or LazyConfig), trains one step and
  infers at a size that is not a multiple of 32, through detectron2's own ``build_model``
  / ``instantiate``; panoptic and semantic outputs have the input's size;
- the CLI: unknown tasks and models exit 2 and write nothing; an edited seed is kept.

The whole catalog on the meta device (RetinaNet and Panoptic FPN from their seeds) is in
tests/test_catalog.py, through :func:`tests.helpers.probe_task_seed`.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest
import torch

from tests.helpers import ROOT, cli, config_test_size, load_json, model_config, not_a_multiple, shared_dir

#: One model per kind of neck: detectron2's FPN (resnet, convnext, NHWC swin), the simple
#: pyramid of a fixed-size ViT built at another side (deit), strides 16/32/64 (levit).
TASK_SAMPLE = [
    ("resnet18", "resnet"),
    ("convnext_atto", "convnext"),
    ("swin_tiny_patch4_window7_224", "swin_transformer"),
    ("deit_tiny_patch16_224", "deit"),
    ("levit_128s", "levit"),
]
YAML_TASKS = ["cascade_mask_rcnn", "faster_rcnn", "keypoint_rcnn", "lvis_mask_rcnn", "mask_rcnn",
              "panoptic_fpn", "retinanet", "semantic_fpn"]  # fmt: skip
PY_TASKS = ["fcos", "keypoint_rcnn", "mask_rcnn", "mask_rcnn_vitdet", "panoptic_fpn", "retinanet"]
NUM_CLASSES = 3
#: Dilated backbones for DeepLab: a CNN whose stages timm dilates, and a ConvNeXt.
DEEPLAB_SAMPLE = [("resnet18", "resnet"), ("convnext_atto", "convnext")]
#: The zoo configs of the issue's table, and the user's image size.
ZOO_CONFIGS = [
    "COCO-Detection/retinanet_R_50_FPN_1x.yaml",
    "COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml",
    "COCO-PanopticSegmentation/panoptic_fpn_R_50_1x.yaml",
    "COCO-Keypoints/keypoint_rcnn_R_50_FPN_1x.yaml",
    "Misc/cascade_mask_rcnn_R_50_FPN_1x.yaml",
    "LVISv1-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml",
]
USER_IMAGE = (320, 427)
#: The keys a user swaps into a zoo config to use a generated backbone (as from the FPN seed).
BACKBONE_KEYS = ("MODEL.BACKBONE.NAME", "MODEL.BACKBONE.CONFIG", "MODEL.FPN.IN_FEATURES", "MODEL.PIXEL_MEAN",
                 "MODEL.PIXEL_STD", "INPUT.FORMAT")  # fmt: skip


def _get(cfg, key):
    for part in key.split("."):
        cfg = cfg[part]
    return cfg


def _set(cfg, key, value):
    *parents, leaf = key.split(".")
    for part in parents:
        cfg = cfg[part]
    cfg[leaf] = value


def _zoo_cfg(path: str):
    import generated
    from detectron2 import model_zoo
    from detectron2.config import get_cfg

    cfg = get_cfg()
    generated.add_timm_config(cfg)
    cfg.merge_from_file(model_zoo.get_config_file(path))
    return cfg


def _swapped(zoo: str, model: str = "resnet18", family: str = "resnet"):
    """detectron2's zoo config with the backbone keys of the model's FPN seed, as a user does."""
    seed = model_config(model, family)
    cfg = _zoo_cfg(zoo)
    for key in BACKBONE_KEYS:
        _set(cfg, key, _get(seed, key))
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.WEIGHTS = ""
    return cfg


def _instances(size, keypoints: bool):
    from detectron2.structures import BitMasks, Boxes, Instances, Keypoints

    h, w = size
    boxes = torch.tensor([[0.1, 0.1, 0.6, 0.7], [0.4, 0.3, 0.9, 0.9]]) * torch.tensor([w, h, w, h])
    masks = torch.zeros(2, h, w, dtype=torch.bool)
    for mask, (x0, y0, x1, y1) in zip(masks, boxes.int().tolist()):
        mask[y0:y1, x0:x1] = True
    fields = dict(gt_boxes=Boxes(boxes), gt_classes=torch.tensor([0, 0 if keypoints else 2]), gt_masks=BitMasks(masks))
    if keypoints:
        points = torch.zeros(2, 17, 3)
        points[..., 0] = boxes[:, None, 0] + 5
        points[..., 1] = boxes[:, None, 1] + 5
        points[..., 2] = 2
        fields["gt_keypoints"] = Keypoints(points)
    return Instances((h, w), **fields)


def _input(size, seed: int, train: bool, keypoints: bool = False, segmentation: bool = False):
    h, w = size
    image = torch.randint(0, 256, (3, h, w), generator=torch.Generator().manual_seed(seed)).float()
    item = {"image": image, "height": h, "width": w}
    if train:
        item["instances"] = _instances(size, keypoints)
        if segmentation:
            item["sem_seg"] = torch.randint(0, NUM_CLASSES, (h, w), generator=torch.Generator().manual_seed(seed))
    return item


def _train_and_infer(net, train_size, test_size, *, keypoints=False, segmentation=False):
    """One training step (finite losses, gradients in the backbone), then inference."""
    from detectron2.utils.events import EventStorage

    net.train()
    with EventStorage():
        losses = net([_input(train_size, 0, True, keypoints, segmentation)])
    assert losses and all(torch.isfinite(v) for v in losses.values()), losses
    sum(losses.values()).backward()
    backbone = getattr(net.backbone, "bottom_up", net.backbone)  # DeepLab reads the plain backbone
    grads = [p.grad for p in backbone.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    net.eval()
    with torch.no_grad():
        (output,) = net([_input(test_size, 1, False)])
    _check_output(output, test_size)
    return output


def _check_output(output, size):
    if "instances" in output:
        assert output["instances"].image_size == tuple(size)
    if "sem_seg" in output:
        assert tuple(output["sem_seg"].shape[-2:]) == tuple(size)
    if "panoptic_seg" in output:
        assert tuple(output["panoptic_seg"][0].shape) == tuple(size)
    assert {"instances", "sem_seg"} & set(output), output.keys()


# ------------------------------------------------------------ detectron2's zoo configs


@pytest.mark.parametrize("zoo", ZOO_CONFIGS)
def test_a_zoo_config_takes_the_backbone_keys_alone(zoo):
    """The issue's table: each zoo config, only the backbone keys swapped, builds and infers
    on a 320x427 image after the config's own test resize (RetinaNet failed with
    ``KeyError: 'p7'`` when the FPN variant only pooled p6)."""
    from detectron2.modeling import build_model

    cfg = _swapped(zoo)
    torch.manual_seed(0)
    net = build_model(cfg).eval()
    shapes = net.backbone.output_shape()
    read = list(cfg.MODEL.RETINANET.IN_FEATURES) if cfg.MODEL.META_ARCHITECTURE == "RetinaNet" else list(cfg.MODEL.RPN.IN_FEATURES)
    assert set(read) <= set(shapes)
    h, w = config_test_size(cfg, USER_IMAGE)
    with torch.no_grad():
        (output,) = net([{**_input((h, w), 1, False), "height": USER_IMAGE[0], "width": USER_IMAGE[1]}])
    _check_output(output, USER_IMAGE)


def test_retinanet_from_the_zoo_config_trains_one_step():
    from detectron2.modeling import build_model

    cfg = _swapped("COCO-Detection/retinanet_R_50_FPN_1x.yaml")
    cfg.MODEL.RETINANET.NUM_CLASSES = NUM_CLASSES
    torch.manual_seed(0)
    net = build_model(cfg)
    assert list(net.backbone.output_shape()) == ["p2", "p3", "p4", "p5", "p6", "p7"]
    _train_and_infer(net, not_a_multiple((256, 320)), not_a_multiple((224, 288)))


def test_heads_reading_levels_the_neck_lacks_fail_naming_the_key():
    from detectron2.modeling import build_model

    cfg = _swapped("COCO-Detection/retinanet_R_50_FPN_1x.yaml")
    cfg.MODEL.BACKBONE.CONFIG.TOP_BLOCK = "maxpool"
    with pytest.raises(ValueError, match=r"MODEL\.RETINANET\.IN_FEATURES: p7 not among the outputs.*valid"):
        build_model(cfg)
    cfg.MODEL.BACKBONE.CONFIG.TOP_BLOCK = "p8p9"
    with pytest.raises(ValueError, match=r"TOP_BLOCK: 'p8p9' is not valid; valid: .*maxpool, p6p7, p6p7_fpn"):
        build_model(cfg)


# --------------------------------------------------------------------------- the seeds


def _seeded(root: Path) -> None:
    """The repository's package and seeds, copied, then every task seeded for the sample
    through the CLI, as a user runs it."""
    for name in ("generated", "configs"):
        shutil.copytree(ROOT / name, root / name)
    models = [model for model, _ in TASK_SAMPLE]
    for fmt, tasks in (("yaml", YAML_TASKS), ("py", PY_TASKS)):
        args = [a for task in tasks for a in ("--task", task)]
        result = cli("seed", *models, *args, "--format", fmt, "-o", root, catch_exceptions=False)
        assert result.exit_code == 0, result.output
    result = cli("seed", *[m for m, _ in DEEPLAB_SAMPLE], "--task", "deeplab", "-o", root, catch_exceptions=False)
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Path:
    return shared_dir(tmp_path_factory, "task-seeds", _seeded)


def _seed_file(root: Path, model: str, family: str, task: str, fmt: str) -> Path:
    from generator.tasks import seed_file

    return root / "configs" / seed_file(family, model, task, fmt)


def _yaml_cfg(path: Path, *overrides):
    import generated
    from detectron2.config import get_cfg

    cfg = get_cfg()
    generated.add_timm_config(cfg)
    cfg.merge_from_file(str(path))
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", *overrides])
    assert generated.ensure_registered(cfg)
    return cfg


def _flat(cfg, prefix=""):
    out = {}
    for key, value in cfg.items():
        if hasattr(value, "items"):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


#: Keys that follow the model rather than the zoo: the backbone's own (FREEZE_AT 0 from the
#: base: timm backbones train whole), its input rule, and the levels its FPN gives (checked
#: against the built neck in test_every_task_trains_and_infers).
MODEL_KEYS = ("MODEL.BACKBONE.", "MODEL.FPN.IN_FEATURES", "MODEL.WEIGHTS", "MODEL.RESNETS.", "INPUT.MIN_SIZE_TRAIN", "INPUT.MAX_SIZE_TRAIN", "INPUT.MIN_SIZE_TEST",
              "INPUT.MAX_SIZE_TEST", "INPUT.FIXED_INPUT_SIZE", "MODEL.FPN.NORM", "MODEL.ANCHOR_GENERATOR.SIZES",
              "MODEL.RPN.IN_FEATURES", "MODEL.ROI_HEADS.IN_FEATURES", "MODEL.RETINANET.IN_FEATURES",
              "MODEL.SEM_SEG_HEAD.IN_FEATURES", "MODEL.SEM_SEG_HEAD.COMMON_STRIDE")  # fmt: skip
#: What a meta-architecture never reads (the R-CNN heads of the base, for RetinaNet).
UNREAD = {"RetinaNet": ("MODEL.RPN.", "MODEL.ROI_HEADS.", "MODEL.ROI_BOX_HEAD.", "MODEL.ROI_MASK_HEAD.")}


@pytest.mark.parametrize("task", YAML_TASKS)
@pytest.mark.parametrize("model, family", TASK_SAMPLE, ids=[m for m, _ in TASK_SAMPLE])
def test_a_yaml_seed_holds_the_zoo_configs_keys(seeded, model, family, task):
    """Key by key, the seed's config equals detectron2's zoo config with the backbone keys
    swapped in, except for the keys that follow the model."""
    from generator.tasks import TASKS

    seed = _flat(_yaml_cfg(_seed_file(seeded, model, family, task, "yaml")))
    zoo = _flat(_swapped(TASKS[task].zoo_yaml, model, family))
    skip = MODEL_KEYS + UNREAD.get(zoo["MODEL.META_ARCHITECTURE"], ())
    differ = {k: (zoo[k], seed.get(k)) for k in zoo if zoo[k] != seed.get(k) and not k.startswith(skip)}
    assert differ == {}, differ


#: A CPU-sized side for fixed-size models built at other sizes (their seeds' is 1024;
#: tests/test_detection_size.py runs that one).
CPU_SIDE = 448


def _cpu_side(model: str) -> int:
    """``IMG_SIZE`` at or just above :data:`CPU_SIDE` for a model that takes one, else 0."""
    from tests.helpers import generated_class

    step = generated_class(model).IMG_SIZE_MULTIPLE
    return step * -(-CPU_SIDE // step) if step else 0


def _build(seeded, model, family, task, fmt):
    from detectron2.config import instantiate
    from detectron2.modeling import build_model

    from tests.helpers import load_lazy_config

    path = _seed_file(seeded, model, family, task, fmt)
    side = _cpu_side(model)
    if fmt == "yaml":
        cfg = _yaml_cfg(
            path,
            *(["MODEL.BACKBONE.CONFIG.IMG_SIZE", side] if side else []),
            "MODEL.ROI_HEADS.NUM_CLASSES", 1 if task == "keypoint_rcnn" else NUM_CLASSES,
            "MODEL.RETINANET.NUM_CLASSES", NUM_CLASSES,
            "MODEL.SEM_SEG_HEAD.NUM_CLASSES", NUM_CLASSES,
            "MODEL.RPN.POST_NMS_TOPK_TRAIN", 100,
            "MODEL.RPN.POST_NMS_TOPK_TEST", 50,
            "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", 64,
        )  # fmt: skip
        torch.manual_seed(0)
        net = build_model(cfg)
        heads = list(cfg.MODEL.RETINANET.IN_FEATURES) if cfg.MODEL.META_ARCHITECTURE == "RetinaNet" else list(cfg.MODEL.RPN.IN_FEATURES)
        return net, heads, cfg.MODEL.KEYPOINT_ON, cfg.MODEL.META_ARCHITECTURE in ("PanopticFPN", "SemanticSegmentor")
    cfg = load_lazy_config(path)
    cfg.model.backbone.bottom_up.pretrained = False  # the recipe seed's timm weights: no hub here
    if side:
        cfg.model.backbone.bottom_up.img_size = side
    if "roi_heads" in cfg.model:
        cfg.model.roi_heads.num_classes = 1 if task == "keypoint_rcnn" else NUM_CLASSES
        cfg.model.roi_heads.batch_size_per_image = 64
        cfg.model.proposal_generator.post_nms_topk = (100, 50)
    else:
        cfg.model.num_classes = NUM_CLASSES
    if "sem_seg_head" in cfg.model:
        cfg.model.sem_seg_head.num_classes = NUM_CLASSES
    torch.manual_seed(0)
    net = instantiate(cfg.model)
    heads = list(cfg.model.get("head_in_features") or cfg.model.proposal_generator.in_features)
    return net, heads, task == "keypoint_rcnn", task == "panoptic_fpn"


def _sizes(net):
    """A train and a test size that are not multiples of 32, within what the model takes."""
    bottom_up = net.backbone.bottom_up
    if bottom_up.FIXED_INPUT_SIZE:
        side = bottom_up.img_size or bottom_up.INPUT_SIZE[0]
        return not_a_multiple((side * 3 // 4, side)), not_a_multiple((side * 2 // 3, side))
    return not_a_multiple((256, 352)), not_a_multiple((224, 288))


def _train_cases():
    """Every model of :data:`TASK_SAMPLE` with every task once: a task seeded in one format
    in that format, a task seeded in both in YAML for every other model and in LazyConfig
    for the rest (each format of it then trains with two or three of the five models). The
    heads are the same in both formats; what a seed's format changes, its keys and its build
    path, is compared key by key above and built for every family below."""
    both = [task for task in YAML_TASKS if task in PY_TASKS]
    cases = []
    for index, (model, family) in enumerate(TASK_SAMPLE):
        for task in sorted(set(YAML_TASKS) | set(PY_TASKS)):
            if task in both:
                fmt = ("yaml", "py")[(index + both.index(task)) % 2]
            else:
                fmt = "yaml" if task in YAML_TASKS else "py"
            cases.append(pytest.param(model, family, task, fmt, id=f"{model}-{task}-{fmt}"))
    return cases


TRAIN_CASES = _train_cases()


def test_the_training_cases_cover_every_model_task_and_format():
    pairs = [tuple(case.values) for case in TRAIN_CASES]
    assert sorted((m, t) for m, _, t, _ in pairs) == sorted({(m, t) for m, _ in TASK_SAMPLE for t in YAML_TASKS + PY_TASKS})
    seeded = [(t, "yaml") for t in YAML_TASKS] + [(t, "py") for t in PY_TASKS]
    for task, fmt in seeded:
        assert sum((t, f) == (task, fmt) for _, _, t, f in pairs) >= 2, (task, fmt)


@pytest.mark.parametrize("model, family, task, fmt", TRAIN_CASES)
def test_every_task_trains_and_infers_from_its_seed(seeded, model, family, task, fmt):
    net, heads, keypoints, segmentation = _build(seeded, model, family, task, fmt)
    assert type(net.backbone.bottom_up).TIMM_MODEL == model
    shapes = net.backbone.output_shape()
    assert set(heads) <= set(shapes), (heads, list(shapes))
    assert [shapes[name].stride for name in heads] == [2 ** int(name[1:]) for name in heads]
    train_size, test_size = _sizes(net)
    _train_and_infer(net, train_size, test_size, keypoints=keypoints, segmentation=segmentation)


# ----------------------------------------------------------------------------- the CLI


def test_seed_lists_the_tasks():
    from generator.tasks import TASKS

    result = cli("seed", "--list")
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.output.splitlines()] == sorted(TASKS)


@pytest.mark.parametrize(
    "args, listed",
    [
        (["resnet18", "--task", "retina"], "valid: cascade_mask_rcnn, deeplab, faster_rcnn, fcos"),
        (["resnet18", "--task", "fcos", "--format", "yaml"], "valid: py"),
        (["resnet19", "--task", "retinanet"], "did you mean: resnet18"),
        (["resnet18"], "the tasks:"),
        (["vit_tiny_patch16_224", "--task", "deeplab"], "needs a backbone timm dilates"),
    ],
)
def test_seed_refuses_unknown_tasks_and_models_writing_nothing(tmp_path, args, listed):
    for name in ("generated",):
        shutil.copytree(ROOT / name, tmp_path / name)
    result = cli("seed", *args, "-o", tmp_path)
    assert result.exit_code == 2
    assert listed in result.output
    assert not (tmp_path / "configs").exists()
    assert "Traceback" not in result.output


def test_a_task_with_one_format_is_seeded_in_it_without_format(tmp_path):
    for name in ("generated", "configs"):
        shutil.copytree(ROOT / name, tmp_path / name)
    result = cli("seed", "deit_tiny_patch16_224", "--task", "mask_rcnn_vitdet", "-o", tmp_path, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "configs" / "deit" / "deit_tiny_patch16_224_mask_rcnn_vitdet.py").is_file()


def test_an_edited_seed_is_kept_and_its_request_recorded(seeded, tmp_path):
    root = tmp_path / "root"
    for name in ("generated", "configs"):
        shutil.copytree(seeded / name, root / name)
    path = _seed_file(root, "resnet18", "resnet", "retinanet", "yaml")
    edited = path.read_text() + "# mine\n"
    path.write_text(edited)
    assert cli("seed", "resnet18", "--task", "retinanet", "-o", root).exit_code == 0
    assert cli("generate", "-o", root, "--jobs", "1").exit_code == 0
    assert path.read_text() == edited
    manifest = load_json(root / "generated" / "MANIFEST.json")
    assert "resnet18:retinanet:yaml" in manifest["selection"]["seeds"]
    assert cli("check", "-o", root, "--no-diff").exit_code == 0


# ---------------------------------------------------------------- dilated backbones


def _dilated_sample():
    """One model per family that timm dilates (its class states OUTPUT_STRIDES)."""
    from tests.helpers import MANIFEST

    first = {}
    for name, spec in sorted(load_json(MANIFEST)["models"].items()):
        if spec["facts"].get("output_strides"):
            first.setdefault(spec["facts"]["family"], (name, spec["facts"]["family"], tuple(spec["facts"]["output_strides"])))
    return sorted(first.values())


DILATED = _dilated_sample()


def test_dilated_backbones_span_the_cnn_families():
    assert len(DILATED) >= 15, DILATED
    assert {"resnet", "convnext", "efficientnet", "regnet"} <= {family for _, family, _ in DILATED}


@pytest.mark.parametrize("model, family, values", DILATED, ids=[m for m, _, _ in DILATED])
def test_output_stride_caps_every_stride(model, family, values):
    """MODEL.BACKBONE.CONFIG.OUTPUT_STRIDE: timm builds the dilated model, whose maps (meta
    device, a 333x517 image padded as detectron2 pads it) are ceil(padded / stride) with
    every stride capped at it, as the backbone declares."""
    from detectron2.structures import ImageList

    from generator.compat import skip_meta_init
    from tests.helpers import build_backbone, ceil_div, shape_only

    for value in values:
        cfg = model_config(model, family, fpn=False, overrides=["MODEL.BACKBONE.CONFIG.OUTPUT_STRIDE", str(value)])
        cfg.MODEL.BACKBONE.CONFIG.STRIDES = []  # the seed's strides are the undilated ones
        nominal = list(model_config(model, family, fpn=False).MODEL.BACKBONE.CONFIG.STRIDES)
        with skip_meta_init():
            backbone = build_backbone(cfg, "meta")
        shapes = backbone.output_shape()
        assert [s.stride for s in shapes.values()] == [min(s, value) for s in nominal]
        batch = ImageList.from_tensors([torch.zeros(3, 333, 517, device="meta")], backbone.size_divisibility).tensor
        with shape_only(), torch.no_grad():
            maps = backbone(batch)
        h, w = batch.shape[-2:]
        assert {n: tuple(t.shape[-2:]) for n, t in maps.items()} == {
            n: (ceil_div(h, s.stride), ceil_div(w, s.stride)) for n, s in shapes.items()
        }


def test_output_stride_is_refused_by_models_timm_cannot_dilate():
    from tests.helpers import build_backbone

    cfg = model_config("vit_tiny_patch16_224", "vision_transformer", fpn=False, overrides=["MODEL.BACKBONE.CONFIG.OUTPUT_STRIDE", "16"])
    with pytest.raises(ValueError, match=r"OUTPUT_STRIDE: 16 is not valid for vit_tiny_patch16_224; valid: 0 \(timm cannot"):
        build_backbone(cfg, "meta")
    cfg = model_config("resnet18", "resnet", fpn=False, overrides=["MODEL.BACKBONE.CONFIG.OUTPUT_STRIDE", "4"])
    with pytest.raises(ValueError, match=r"OUTPUT_STRIDE: 4 is not valid for resnet18; valid: 0, 8, 16"):
        build_backbone(cfg, "meta")


@pytest.mark.parametrize("model, family", DEEPLAB_SAMPLE, ids=[m for m, _ in DEEPLAB_SAMPLE])
def test_deeplab_trains_on_its_crop_and_infers_at_its_test_size(seeded, model, family):
    """The DeepLab seed (detectron2's DeepLabV3 project head on the dilated coarsest
    level): one training step on a crop of the config's own crop size, and inference on
    an image its own test resize makes 1024x2048, one pixel short of each: a semantic map
    of the input's size."""
    import generated
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model
    from detectron2.projects.deeplab import add_deeplab_config

    cfg = get_cfg()
    generated.add_timm_config(cfg)
    add_deeplab_config(cfg)
    cfg.merge_from_file(str(_seed_file(seeded, model, family, "deeplab", "yaml")))
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.SEM_SEG_HEAD.NUM_CLASSES", str(NUM_CLASSES)])
    assert generated.ensure_registered(cfg)
    torch.manual_seed(0)
    net = build_model(cfg)
    res5 = cfg.MODEL.SEM_SEG_HEAD.IN_FEATURES[0]
    assert net.backbone.output_shape()[res5].stride == cfg.MODEL.BACKBONE.CONFIG.OUTPUT_STRIDE == 16
    crop = tuple(cfg.INPUT.CROP.SIZE)
    _train_and_infer(net, crop, not_a_multiple(config_test_size(cfg, (512, 1024))), segmentation=True)


# ------------------------------------------------------- one model per family, meta device


def _family_sample():
    from tests.helpers import repo_models

    first = {}
    for model, family in repo_models():
        first.setdefault(family, (model, family))
    return sorted(first.values())


FAMILIES = _family_sample()
#: Mask R-CNN, RetinaNet and Panoptic FPN run for every model in tests/test_catalog.py.
META_TASKS = [t for t in YAML_TASKS if t not in ("mask_rcnn", "retinanet", "panoptic_fpn")]


@pytest.mark.parametrize("model, family", FAMILIES, ids=[m for m, _ in FAMILIES])
def test_every_yaml_task_builds_and_infers_for_one_model_per_family(model, family):
    """Each family's first model, every YAML task from its seed (rendered as `d2timm-gen
    seed` renders it), built by ``build_model`` on the meta device around one bottom-up; a
    COCO image through the seed's own test resize (not a multiple of 32) and the
    detector's own ``preprocess_image``; the levels each head reads, and semantic maps of
    the image's size (:func:`tests.helpers.probe_task_seed`)."""
    from generator.compat import skip_meta_init
    from tests.helpers import build_backbone, probe_device, probe_task_seed

    device = probe_device(model)
    fpn_cfg = model_config(model, family)
    with skip_meta_init() if device == "meta" else contextlib.nullcontext():
        fpn = build_backbone(fpn_cfg, device)
    for task in META_TASKS:
        probe_task_seed(model, family, task, fpn.bottom_up.eval(), fpn_cfg, device=device)


@pytest.mark.parametrize("model, family", FAMILIES, ids=[m for m, _ in FAMILIES])
def test_every_lazy_task_builds_and_infers_for_one_model_per_family(tmp_path, model, family):
    """Each family's first model, every LazyConfig task seed (as `d2timm-gen seed --format
    py` renders it) instantiated on the meta device; a COCO image through the seed's own
    test transform and the detector's ``preprocess_image``: the levels its heads read, of
    ceil(padded / stride)."""
    from detectron2.config import instantiate

    from generator.compat import skip_meta_init
    from generator.render import render_task_seed
    from generator.spec import ModelFacts, make_spec
    from tests.helpers import augmented_size, ceil_div, load_lazy_config, manifest_of, probe_device, shape_only

    device = probe_device(model)
    spec = make_spec(ModelFacts.from_dict(manifest_of(ROOT / "generated")["models"][model]["facts"]))
    # Mask R-CNN's: tests/test_catalog.py; the recipe seed's model is Mask R-CNN's.
    for task in [t for t in PY_TASKS if t not in ("mask_rcnn", "mask_rcnn_vitdet")]:
        ((path, text),) = render_task_seed(spec, task, "py", "generated").items()
        seed = tmp_path / Path(path).name
        seed.write_text(text)
        cfg = load_lazy_config(seed)
        if device != "meta":  # gemma4_vit reads tensor values: real tensors at a small size
            cfg.dataloader.test.mapper.augmentations[0].short_edge_length = 96
            cfg.dataloader.test.mapper.augmentations[0].max_size = 160
        with skip_meta_init() if device == "meta" else contextlib.nullcontext(), torch.device(device):
            net = instantiate(cfg.model).eval()
        read = list(cfg.model.get("head_in_features") or cfg.model.proposal_generator.in_features)
        shapes = net.backbone.output_shape()
        assert set(read) <= set(shapes), (task, read, list(shapes))
        h, w = augmented_size(cfg.dataloader.test.mapper.augmentations, (427, 640))
        with shape_only(), torch.no_grad():
            images = net.preprocess_image([{"image": torch.zeros(3, h, w, device=device)}])
            maps = net.backbone(images.tensor)
        padded = images.tensor.shape[-2:]
        for name in read:
            assert tuple(maps[name].shape[-2:]) == (ceil_div(padded[0], shapes[name].stride), ceil_div(padded[1], shapes[name].stride)), (task, name)
