"""Fixed-size models built at a detection size, with their pretrained weights, on real tensors.

timm builds about 160 fixed-size architectures at other input sizes (``img_size``), and
the generated backbones build them at a detection size (``IMG_SIZE``, 1024 by default).
Their checkpoints are saved at the pretrained size (224, 384, ...): a checkpoint each test
writes itself at that size must load through ``PRETRAINED``. Parameters whose shape does
not depend on the size must load exactly; the grid-sized ones the module lists in
``GRID_PARAMS`` must be resampled as timm's own resampling helpers resample them (written
independently of ``runtime/resample.py``), class tokens and extra table entries unchanged.

One model per resampling layout and family (:data:`LOADING`), at a side larger than the
pretrained one and small enough for a CPU; the full detection size is covered by the
real-compute sample in :data:`DETECTION`, through the seeds' own test resize.
"""

from __future__ import annotations

import fnmatch
import math
import re

import pytest
import torch
import torch.nn.functional as F

from tests.helpers import (
    ROOT,
    build_backbone,
    classifier_key,
    config_test_size,
    generated_class,
    manifest_of,
    model_config,
    shape_only,
    skip_meta_init,
)

#: (model, family): one per family with grid-sized parameters, covering every layout.
LOADING = [
    ("cait_xxs24_224", "cait"),  # tokens, no class token
    ("tnt_s_patch16_224", "tnt"),  # tokens after a class token
    ("crossvit_tiny_240", "crossvit"),  # two branches' tokens, side a multiple of 240
    ("nest_tiny", "nest"),  # tokens per block, on dim 2 of a 4-D parameter
    ("convit_tiny", "convit"),  # tokens
    ("hiera_tiny_224", "hiera"),  # tokens at stride 4
    ("pit_ti_224", "pit"),  # NCHW grid
    ("visformer_tiny", "visformer"),  # three NCHW grids
    ("volo_d1_224", "volo"),  # NHWC grid
    ("lambda_resnet26rpt_256", "byoanet"),  # relative grid on dims 0 and 1
    ("levit_128s", "levit"),  # attention-bias tables, (heads, res * res)
    ("efficientformerv2_s0", "efficientformer_v2"),  # attention-bias tables
    ("gcvit_xxtiny", "gcvit"),  # relative-position tables, (L, heads)
    ("coatnet_pico_rw_224", "maxxvit"),  # relative-position tables
    ("beit_base_patch16_224", "beit"),  # tables with 3 extra entries (timm resamples these too)
    ("botnet26t_256", "byoanet"),  # 1-D relative offsets
    ("mvitv2_tiny", "mvitv2"),  # 1-D relative offsets
    ("coat_lite_tiny", "coat"),  # nothing depends on the size
]

#: Real compute at the detection size of each seed: formerly fixed-size models (their
#: small variants) and window models that need multiples of 256.
DETECTION = [
    ("levit_128s", "levit"),
    ("pit_ti_224", "pit"),
    ("efficientformerv2_s0", "efficientformer_v2"),
    ("coat_lite_tiny", "coat"),
    ("maxvit_rmlp_nano_rw_256", "maxxvit"),
    ("halonet26t", "byoanet"),
]


def _test_side(cls) -> int:
    """A side that is neither the pretrained one nor the default, about 1.5 times the
    pretrained one: a multiple of the model's IMG_SIZE_MULTIPLE."""
    step = cls.IMG_SIZE_MULTIPLE
    return step * math.ceil(1.5 * cls.INPUT_SIZE[0] / step)


def _reference(key: str, value: torch.Tensor, target, param) -> torch.Tensor:
    """timm's own resampling of a grid-sized parameter (written apart from ours)."""
    from timm.layers import resample_abs_pos_embed, resample_abs_pos_embed_nhwc, resize_rel_pos_bias_table_levit

    if param.kind == "tokens":
        dim, side = param.dims[0], math.isqrt(target[param.dims[0]] - param.extra)
        moved = value.movedim(dim, -2)  # (..., N, C)
        rows = moved.reshape(-1, *moved.shape[-2:])  # one (N, C) embedding per leading index (nest's blocks)
        out = torch.cat([resample_abs_pos_embed(row[None], (side, side), num_prefix_tokens=param.extra) for row in rows])
        return out.reshape(*moved.shape[:-2], *out.shape[-2:]).movedim(-2, dim)
    if param.kind == "grid" and param.dims == (1, 2):
        return resample_abs_pos_embed_nhwc(value, [target[1], target[2]])
    if param.kind == "grid":
        moved = value.movedim(param.dims, (-2, -1))
        out = F.interpolate(moved.reshape(1, -1, *moved.shape[-2:]), size=[target[d] for d in param.dims], mode="bicubic", antialias=True)
        return out.reshape(*moved.shape[:-2], *out.shape[-2:]).movedim((-2, -1), param.dims)
    if param.kind == "table" and not param.extra:
        table = value if param.dims == (0,) else value.T
        out = resize_rel_pos_bias_table_levit(table, (target[param.dims[0]], table.shape[1]))
        return out if param.dims == (0,) else out.T
    if param.kind == "line":
        moved = value.movedim(param.dims[0], -1)
        out = F.interpolate(moved.reshape(1, -1, moved.shape[-1]), size=target[param.dims[0]], mode="linear")
        return out.reshape(*moved.shape[:-1], -1).movedim(-1, param.dims[0])
    return None  # BEiT's tables: timm interpolates them geometrically, checked below by their extra entries


@pytest.mark.parametrize("model, family", LOADING, ids=[m for m, _ in LOADING])
def test_a_checkpoint_at_the_pretrained_size_loads_at_a_detection_size(model, family, tmp_path):
    import timm

    cls = generated_class(model)
    assert cls.IMG_SIZE >= 1024 and cls.IMG_SIZE % cls.IMG_SIZE_MULTIPLE == 0, "built at a detection size"
    torch.manual_seed(0)
    classifier = timm.create_model(model, pretrained=False, img_size=cls.INPUT_SIZE[0]).eval()
    checkpoint = {k: v.clone() for k, v in classifier.state_dict().items()}
    path = tmp_path / f"{model}.pth"
    torch.save(checkpoint, path)

    side = _test_side(cls)
    cfg = model_config(model, family, fpn=False, overrides=["MODEL.BACKBONE.CONFIG.PRETRAINED", str(path), "MODEL.BACKBONE.CONFIG.IMG_SIZE", str(side)])
    backbone = build_backbone(cfg).eval()
    assert backbone.img_size == side and backbone.size_divisibility == side
    with torch.device("meta"):
        target = {k: tuple(v.shape) for k, v in timm.create_model(model, img_size=side).state_dict().items()}

    loaded = backbone.body.state_dict()
    resampled = set()
    for key, value in loaded.items():
        name = classifier_key(key, checkpoint)
        source = checkpoint[name]
        param = next((p for p in cls.GRID_PARAMS if fnmatch.fnmatchcase(name, p.pattern)), None)
        if tuple(source.shape) == tuple(value.shape):
            torch.testing.assert_close(value, source, rtol=0, atol=0, msg=f"{name} did not load as saved")
            continue
        assert param is not None, f"{name}: {tuple(source.shape)} -> {tuple(value.shape)}, not a grid parameter"
        assert tuple(value.shape) == target[name]
        resampled.add(param.pattern)
        expected = _reference(name, source, target[name], param)
        if expected is not None:
            torch.testing.assert_close(value, expected, rtol=1e-4, atol=1e-5, msg=f"{name} resampled differently")
        if param.extra:  # class tokens first, extra table entries last: never resampled
            head = slice(0, param.extra) if param.kind == "tokens" else slice(-param.extra, None)
            dim = param.dims[0]
            torch.testing.assert_close(value.movedim(dim, 0)[head], source.movedim(dim, 0)[head], rtol=0, atol=0)
    assert resampled == {p.pattern for p in cls.GRID_PARAMS if any(fnmatch.fnmatchcase(k, p.pattern) for k in map(lambda k: classifier_key(k, checkpoint), loaded))}

    x = torch.randn(1, 3, side - 37, side - 5)
    with torch.no_grad():
        out = backbone(x)
    for name, shape in backbone.output_shape().items():
        assert tuple(out[name].shape) == (1, shape.channels, math.ceil((side - 37) / shape.stride), math.ceil((side - 5) / shape.stride))
        assert torch.isfinite(out[name]).all()


@pytest.mark.parametrize("model, family", DETECTION, ids=[m for m, _ in DETECTION])
def test_mask_rcnn_infers_at_the_seeds_detection_size(model, family):
    """Inference through the FPN seed as it is, an image resized by its own test resize
    (a 427x640 image reaches a long side of 1024 or more), on real tensors."""
    from detectron2.modeling import build_model

    cfg = model_config(model, family, overrides=["MODEL.DEVICE", "cpu", "MODEL.ROI_HEADS.NUM_CLASSES", "3"])
    h, w = config_test_size(cfg, (427, 640))
    assert max(h, w) >= 1024
    torch.manual_seed(0)
    net = build_model(cfg).eval()
    image = torch.randint(0, 256, (3, h, w), generator=torch.Generator().manual_seed(0)).float()
    with torch.no_grad():
        (output,) = net([{"image": image, "height": 427, "width": 640}])
    assert output["instances"].image_size == (427, 640)
    features = {}
    net.backbone.bottom_up.register_forward_hook(lambda m, a, out: features.update(out))
    with torch.no_grad():
        padded = net.preprocess_image([{"image": image}]).tensor
        net.backbone(padded)
    for name, shape in net.backbone.bottom_up.output_shape().items():
        assert tuple(features[name].shape[-2:]) == (math.ceil(padded.shape[-2] / shape.stride), math.ceil(padded.shape[-1] / shape.stride))
        assert torch.isfinite(features[name]).all(), name


# ------------------------------------------------------------------ IMG_SIZE, bad values


@pytest.mark.parametrize(
    "model, family, value, listed",
    [
        ("cait_xxs24_224", "cait", "1000", "its pretrained size 224, or a square side that is a multiple of 16, such as 1024"),
        ("resnet18", "resnet", "1024", "0 (the model's own size), since it takes any input size"),
        ("mixer_s16_224", "mlp_mixer", "1024", "since it stays at 224x224: its parameter blocks.*.mlp_tokens.fc1.weight"),
    ],
)
def test_bad_img_size_names_the_key_and_the_valid_values(model, family, value, listed):
    cfg = model_config(model, family, fpn=False, overrides=["MODEL.BACKBONE.CONFIG.IMG_SIZE", value])
    with pytest.raises(ValueError, match=re.escape("MODEL.BACKBONE.CONFIG.IMG_SIZE: ")) as error:
        build_backbone(cfg, device="meta")
    assert listed in str(error.value)


def test_a_checkpoint_that_does_not_fit_names_the_parameter(tmp_path):
    """A non-grid parameter of the wrong shape cannot be resampled: the error names it."""
    import timm

    from generated.runtime.weights import CheckpointError

    classifier = timm.create_model("levit_128s", pretrained=False)
    checkpoint = classifier.state_dict()
    key = "stages.1.blocks.0.mlp.ln1.linear.weight"
    checkpoint[key] = checkpoint[key][:, :-1].clone()
    path = tmp_path / "levit.pth"
    torch.save(checkpoint, path)
    cfg = model_config("levit_128s", "levit", fpn=False, overrides=["MODEL.BACKBONE.CONFIG.PRETRAINED", str(path), "MODEL.BACKBONE.CONFIG.IMG_SIZE", "320"])
    with pytest.raises(CheckpointError, match=re.escape(key)):
        build_backbone(cfg)


def test_an_input_larger_than_the_build_size_says_what_to_change():
    backbone = build_backbone(model_config("levit_128s", "levit", fpn=False), device="meta")
    with pytest.raises(ValueError, match="built at 1024x1024 takes inputs up to that size.*MODEL.BACKBONE.CONFIG.IMG_SIZE"):
        backbone(torch.empty(1, 3, 1025, 640, device="meta"))


# --------------------------------------------------- hard families at two detector sizes

#: Two non-square sizes a detector may hand the backbone without resizing (padded as
#: detectron2 pads a batch): neither side a multiple of any window or fixed size.
DETECTOR_SIZES = ((384, 512), (448, 320))


def _hard(spec: dict) -> bool:
    """A model that needs more than detectron2's FPN gives it: fixed-size, windows
    (multiples above 32), padded inputs or channels-last maps."""
    facts = spec["facts"]
    return facts["fixed_input_size"] or spec["size_divisibility"] > 32 or facts["input_pad"] > 0 or facts["layout"] == "NHWC"


def _hard_sample():
    """The smallest model of every family that has a hard one (measured on the meta
    device: gemma4_vit's are in the catalog test, on the CPU)."""
    best = {}
    for name, spec in manifest_of(ROOT / "generated")["models"].items():
        facts = spec["facts"]
        if _hard(spec) and facts["meta_forward"]:
            key = (facts["params"], name)
            if facts["family"] not in best or key < best[facts["family"]][0]:
                best[facts["family"]] = (key, name)
    return sorted((name, family) for family, (_, name) in best.items())


HARD_SAMPLE = _hard_sample()


def test_the_hard_sample_spans_the_hard_families():
    assert len(HARD_SAMPLE) >= 30, HARD_SAMPLE


@pytest.mark.parametrize("model, family", HARD_SAMPLE, ids=[m for m, _ in HARD_SAMPLE])
def test_hard_families_take_non_square_detector_sizes(model, family):
    """384x512 and 448x320, padded as detectron2 pads (the backbone's size_divisibility),
    through the FPN of the model's seed on the meta device: maps of ceil(padded / stride).
    A model that stays at its pretrained size (smaller than these) refuses them, naming
    the keys to change."""
    from detectron2.structures import ImageList

    cfg = model_config(model, family)
    with skip_meta_init():
        fpn = build_backbone(cfg, "meta")
    cls = type(fpn.bottom_up)
    for size in DETECTOR_SIZES:
        batch = ImageList.from_tensors([torch.zeros(3, *size, device="meta")], fpn.size_divisibility).tensor
        height, width = batch.shape[-2:]
        if cls.FIXED_INPUT_SIZE and not cls.IMG_SIZE_MULTIPLE and max(size) > cls.INPUT_SIZE[1]:
            with pytest.raises(ValueError, match=r"takes inputs up to that size.*MODEL\.BACKBONE\.CONFIG\.IMG_SIZE"):
                fpn(batch)
            continue
        with shape_only(), torch.no_grad():
            maps = fpn(batch)
        expected = {n: (1, s.channels, -(-height // s.stride), -(-width // s.stride)) for n, s in fpn.output_shape().items()}
        assert {n: tuple(t.shape) for n, t in maps.items()} == expected, (model, size, (height, width))


# ------------------------------------------------------- any IMG_SIZE the config accepts


def _moved_sample():
    """The smallest model built at a detection size per family and IMG_SIZE step."""
    best = {}
    for name, spec in manifest_of(ROOT / "generated")["models"].items():
        facts = spec["facts"]
        if facts["img_size"] and facts["meta_forward"]:
            group = (facts["family"], facts["img_size_multiple"])
            if group not in best or (facts["params"], name) < best[group]:
                best[group] = (facts["params"], name)
    return sorted((name, family) for (family, _), (_, name) in best.items())


MOVED_SAMPLE = _moved_sample()

#: A side a user might set instead of the default: below it, not a power of two.
USER_SIDE = 800


@pytest.mark.parametrize("model, family", MOVED_SAMPLE, ids=[m for m, _ in MOVED_SAMPLE])
def test_any_img_size_the_config_accepts_builds_and_runs(model, family):
    """MODEL.BACKBONE.CONFIG.IMG_SIZE at the first side from USER_SIDE the class accepts
    (a multiple of its step): timm builds the model there and a 600x800 image, padded as
    detectron2 pads it, gives maps of ceil(padded / stride) (meta device)."""
    from detectron2.structures import ImageList

    cls = generated_class(model)
    side = next(s for s in range(USER_SIDE, 4 * USER_SIDE) if s % cls.IMG_SIZE_MULTIPLE == 0)
    cfg = model_config(model, family, overrides=["MODEL.BACKBONE.CONFIG.IMG_SIZE", str(side)])
    with skip_meta_init():
        fpn = build_backbone(cfg, "meta")
    assert fpn.bottom_up.img_size == side
    image = torch.zeros(3, min(600, side), min(800, side), device="meta")
    batch = ImageList.from_tensors([image], fpn.size_divisibility).tensor
    height, width = batch.shape[-2:]
    seen = []
    hook = fpn.bottom_up.body.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape[-2:])))
    with shape_only(), torch.no_grad():
        maps = fpn(batch)
    hook.remove()
    assert seen == [(side, side)]  # timm's model runs at the side it is built at
    expected = {n: (1, s.channels, -(-height // s.stride), -(-width // s.stride)) for n, s in fpn.output_shape().items()}
    assert {n: tuple(t.shape) for n, t in maps.items()} == expected
