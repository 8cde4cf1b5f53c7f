"""The generated backbones at run time, on real tensors (CPU): one Mask R-CNN training
step and inference for a sample of 30 small architectures from 30 timm families (see
:data:`SAMPLE`), plus config validation, FREEZE_AT, local weights and import hygiene
(on the five small CNNs of :data:`SMALL`).
"""

from __future__ import annotations

import math
import sys
import textwrap

import pytest
import torch

from tests.helpers import ROOT, build_backbone, generated_class, model_config, python_subprocess

SMALL = [
    ("resnet18", "resnet"),
    ("convnext_atto", "convnext"),
    ("efficientnet_b0", "efficientnet"),
    ("mobilenetv3_small_050", "mobilenetv3"),
    ("regnetx_002", "regnet"),
]

#: The real-compute sample of the catalog: small variants of 30 architectures from 30
#: timm families, covering every kind of handling the generated code does: NHWC maps
#: (swin, mambaout, tiny_vit), single-scale models with the simple pyramid (vit, deit,
#: eva patch 14, xcit, cait, crossvit), dynamic image sizes (vit, swin, eva), fixed
#: sizes padded inside (levit, pit, cait, coat, crossvit), timm's off-by-one maps (pit),
#: unpadded convolutions (inception_v3), strides 16/32/64 (levit, efficientvit_m),
#: stride-1 levels (dla, cspnet) and wrappers without stage paths (hrnet, mvitv2).
SAMPLE = SMALL + [
    ("vit_tiny_patch16_224", "vision_transformer"),
    ("deit_tiny_patch16_224", "deit"),
    ("swin_tiny_patch4_window7_224", "swin_transformer"),
    ("levit_128s", "levit"),
    ("pit_ti_224", "pit"),
    ("crossvit_tiny_240", "crossvit"),
    ("inception_v3", "inception_v3"),
    ("efficientvit_m0", "efficientvit_msra"),
    ("mambaout_femto", "mambaout"),
    ("xcit_nano_12_p16_224", "xcit"),
    ("cait_xxs24_224", "cait"),
    ("coat_lite_tiny", "coat"),
    ("eva02_tiny_patch14_224", "eva"),
    ("dla34", "dla"),
    ("ghostnet_050", "ghostnet"),
    ("hrnet_w18_small", "hrnet"),
    ("mvitv2_tiny", "mvitv2"),
    ("repvit_m0_9", "repvit"),
    ("edgenext_xx_small", "edgenext"),
    ("poolformer_s12", "metaformer"),
    ("mobilevitv2_050", "mobilevit"),
    ("cs3darknet_s", "cspnet"),
    ("tiny_vit_5m_224", "tiny_vit"),
    ("hgnetv2_b0", "hgnet"),
    ("fasternet_t0", "fasternet"),
]
H, W = 320, 448
NUM_CLASSES = 3

#: A small Mask R-CNN: few proposals, three classes.
SMALL_RCNN = [
    "MODEL.DEVICE", "cpu",
    "MODEL.ROI_HEADS.NUM_CLASSES", str(NUM_CLASSES),
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "64",
    "MODEL.RPN.BATCH_SIZE_PER_IMAGE", "64",
    "MODEL.RPN.PRE_NMS_TOPK_TRAIN", "200",
    "MODEL.RPN.POST_NMS_TOPK_TRAIN", "100",
    "MODEL.RPN.PRE_NMS_TOPK_TEST", "200",
    "MODEL.RPN.POST_NMS_TOPK_TEST", "50",
]  # fmt: skip


def _image(seed: int = 0, size=(H, W)) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, *size), generator=generator).float()


def _instances(size=(H, W)):
    from detectron2.structures import BitMasks, Boxes, Instances

    h, w = size
    boxes = torch.tensor([[20.0, 30.0, 200.0, 180.0], [150.0, 100.0, 400.0, 300.0]]) * torch.tensor(
        [w / W, h / H, w / W, h / H]
    )
    masks = torch.zeros(len(boxes), h, w, dtype=torch.bool)
    for mask, (x0, y0, x1, y1) in zip(masks, boxes.int().tolist()):
        mask[y0:y1, x0:x1] = True
    return Instances((h, w), gt_boxes=Boxes(boxes), gt_classes=torch.tensor([0, 2]), gt_masks=BitMasks(masks))


def _sample_setting(model: str, family: str):
    """A non-square image size and the config overrides to run the model's seed at it on a
    CPU: 320x448 as it is; a fixed-size model built at a side of 448 or just above
    (``IMG_SIZE``, a CPU-sized stand-in for its detection size; tests/test_detection_size.py
    runs the seeds' own), the image one step shorter than that side; a model that stays
    at its pretrained size, 3/4 of it by all of it."""
    cls = generated_class(model)
    if not cls.FIXED_INPUT_SIZE:
        return (H, W), []
    if not cls.IMG_SIZE_MULTIPLE:  # stays at its pretrained size
        side = cls.INPUT_SIZE[0]
        return (side * 3 // 4, side), []
    step = cls.IMG_SIZE_MULTIPLE
    side = step * math.ceil(W / step)
    return (side - step, side), ["MODEL.BACKBONE.CONFIG.IMG_SIZE", str(side)]


# ------------------------------------------------------------- Mask R-CNN, real tensors


def test_the_sample_spans_the_catalog():
    assert len(SAMPLE) >= 25 and len({family for _, family in SAMPLE}) >= 20


@pytest.mark.parametrize("model, family", SAMPLE, ids=[m for m, _ in SAMPLE])
def test_mask_rcnn_trains_and_infers(model, family):
    """One training step (finite losses, gradients reaching the backbone) and inference,
    through the FPN seed with its own input sizes."""
    from detectron2.modeling import build_model
    from detectron2.structures import Instances
    from detectron2.utils.events import EventStorage

    size, overrides = _sample_setting(model, family)
    h, w = size
    torch.manual_seed(0)
    net = build_model(model_config(model, family, overrides=SMALL_RCNN + overrides))
    assert type(net.backbone.bottom_up).TIMM_MODEL == model
    net.train()
    with EventStorage():
        losses = net([{"image": _image(0, size), "instances": _instances(size), "height": h, "width": w}])
    assert set(losses) == {"loss_cls", "loss_box_reg", "loss_mask", "loss_rpn_cls", "loss_rpn_loc"}
    assert all(torch.isfinite(v) for v in losses.values()), losses
    sum(losses.values()).backward()
    grads = [p.grad for p in net.backbone.bottom_up.parameters() if p.requires_grad]
    assert grads and all(g is None or torch.isfinite(g).all() for g in grads)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)

    net.eval()
    with torch.no_grad():
        (output,) = net([{"image": _image(1, size), "height": h, "width": w}])
    instances = output["instances"]
    assert isinstance(instances, Instances)
    assert instances.image_size == (h, w)
    assert {"pred_boxes", "scores", "pred_classes", "pred_masks"} <= set(instances.get_fields())
    if len(instances):
        assert int(instances.pred_classes.max()) < NUM_CLASSES


# ------------------------------------------------------------------------- FREEZE_AT


def _plain(model: str, family: str, *overrides: str, device=None):
    return build_backbone(model_config(model, family, fpn=False, overrides=overrides), device=device)


def _train_step(backbone, seed: int = 0) -> None:
    backbone.train()
    x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(seed))
    sum(out.float().mean() for out in backbone(x).values()).backward()


def _frozen_bn_classes():
    from timm.layers.norm_act import FrozenBatchNorm2d, FrozenBatchNormAct2d

    return FrozenBatchNorm2d, FrozenBatchNormAct2d


def test_freeze_at_2_freezes_the_stem_and_layer1_of_resnet18():
    frozen_bn, _ = _frozen_bn_classes()
    backbone = _plain("resnet18", "resnet", "MODEL.BACKBONE.FREEZE_AT", "2")
    body = backbone.body
    assert isinstance(body.bn1, frozen_bn)
    assert isinstance(body.layer1[0].bn1, frozen_bn)
    assert isinstance(body.layer2[0].bn1, torch.nn.BatchNorm2d)
    frozen = [body.conv1, body.bn1, body.layer1]
    training = [body.layer2, body.layer3, body.layer4]
    assert all(not p.requires_grad for part in frozen for p in part.parameters())
    assert all(p.requires_grad for part in training for p in part.parameters())

    stats_before = {k: v.clone() for k, v in backbone.state_dict().items() if "running_mean" in k}
    _train_step(backbone)
    assert all(p.grad is None for part in frozen for p in part.parameters())
    assert all(p.grad is not None for part in training for p in part.parameters())
    stats_after = backbone.state_dict()
    # frozen batch norm keeps its statistics; trained batch norm updates them
    assert torch.equal(stats_after["body.layer1.0.bn1.running_mean"], stats_before["body.layer1.0.bn1.running_mean"])
    assert not torch.equal(
        stats_after["body.layer2.0.bn1.running_mean"], stats_before["body.layer2.0.bn1.running_mean"]
    )


def test_freeze_at_0_trains_everything():
    backbone = _plain("resnet18", "resnet", "MODEL.BACKBONE.FREEZE_AT", "0")
    frozen_bn, frozen_bn_act = _frozen_bn_classes()
    assert not any(isinstance(m, (frozen_bn, frozen_bn_act)) for m in backbone.modules())
    _train_step(backbone)
    assert all(p.requires_grad and p.grad is not None for p in backbone.parameters())


def test_freeze_at_max_freezes_everything():
    backbone = _plain("resnet18", "resnet", "MODEL.BACKBONE.FREEZE_AT", "5", device="meta")
    assert not any(p.requires_grad for p in backbone.parameters())


@pytest.mark.parametrize("value", ["6", "-1"])
def test_freeze_at_out_of_range_raises(value):
    with pytest.raises(ValueError, match=r"MODEL\.BACKBONE\.FREEZE_AT: .* valid: 0 .* 5 "):
        _plain("resnet18", "resnet", "MODEL.BACKBONE.FREEZE_AT", value, device="meta")


@pytest.mark.parametrize(
    "model, family, path, act",
    [
        ("efficientnet_b0", "efficientnet", "bn1", torch.nn.SiLU),  # the stem
        ("mobilenetv3_small_050", "mobilenetv3", "blocks.0.0.bn1", torch.nn.ReLU),  # stage 1 (res2)
    ],
)
def test_frozen_batchnorm_act_keeps_its_activation(model, family, path, act):
    """FREEZE_AT=2 freezes the stem and the first stage: their BatchNormAct2d must become
    timm's FrozenBatchNormAct2d with the same activation, so eval outputs do not change
    (detectron2's FrozenBatchNorm2d.convert_frozen_batchnorm would drop it)."""
    _, frozen_bn_act = _frozen_bn_classes()
    torch.manual_seed(0)
    trained = _plain(model, family, "MODEL.BACKBONE.FREEZE_AT", "0")
    torch.manual_seed(0)
    frozen = _plain(model, family, "MODEL.BACKBONE.FREEZE_AT", "2")
    module = frozen.body.get_submodule(path)
    assert isinstance(module, frozen_bn_act) and isinstance(module.act, act), module
    assert not any(p.requires_grad for p in frozen.body.conv_stem.parameters())
    assert all(p.requires_grad for p in frozen.body.blocks[2].parameters())
    x = torch.randn(1, 3, 96, 128, generator=torch.Generator().manual_seed(1))
    trained.eval(), frozen.eval()
    with torch.no_grad():
        expected, actual = trained(x), frozen(x)
    assert list(actual) == list(expected)
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------- local weights


def _timm_key(key: str, available) -> str:
    """The checkpoint key of a features_only parameter (FeatureListNet flattens
    ``stages.0`` into ``stages_0``)."""
    if key in available:
        return key
    head, _, rest = key.partition(".")
    stem, _, index = head.rpartition("_")
    assert index.isdigit(), key
    return f"{stem}.{index}.{rest}"


def _perturbed_state_dict(model: str):
    import timm

    torch.manual_seed(0)
    net = timm.create_model(model, pretrained=False)
    generator = torch.Generator().manual_seed(1)
    return {
        k: (v + torch.randn(v.shape, generator=generator)).contiguous() if v.is_floating_point() else v.clone()
        for k, v in net.state_dict().items()
    }


def _save(state, path):
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)


@pytest.mark.parametrize(
    "model, family, suffix",
    [
        ("resnet18", "resnet", ".pth"),
        ("convnext_atto", "convnext", ".safetensors"),
        ("mobilenetv3_small_050", "mobilenetv3", ".pth"),
    ],
)
def test_local_weights_are_loaded(tmp_path, model, family, suffix):
    state = _perturbed_state_dict(model)
    path = tmp_path / f"{model}{suffix}"
    _save(state, path)
    backbone = _plain(model, family, "MODEL.BACKBONE.CONFIG.PRETRAINED", str(path))
    loaded = backbone.body.state_dict()
    assert len(loaded) > 10
    for key, value in loaded.items():
        assert torch.equal(value, state[_timm_key(key, state)]), key


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_corrupt_weights_name_the_file(tmp_path, suffix):
    path = tmp_path / f"corrupt{suffix}"
    path.write_bytes(b"\x00 definitely not a checkpoint \xff" * 10)
    with pytest.raises(Exception, match=r"PRETRAINED") as info:
        _plain("resnet18", "resnet", "MODEL.BACKBONE.CONFIG.PRETRAINED", str(path))
    assert str(path) in str(info.value)


def test_weights_of_another_model_name_the_file(tmp_path):
    path = tmp_path / "resnet18.pth"
    _save(_perturbed_state_dict("resnet18"), path)
    with pytest.raises(Exception, match=r"PRETRAINED") as info:
        _plain("convnext_atto", "convnext", "MODEL.BACKBONE.CONFIG.PRETRAINED", str(path))
    assert str(path) in str(info.value) and "convnext_atto" in str(info.value)


# ------------------------------------------------------------------ config validation

_KEY = "MODEL.BACKBONE.CONFIG"
_NO_CHECKS = (f"{_KEY}.STRIDES", "[]", f"{_KEY}.CHANNELS", "[]", f"{_KEY}.REMAPS", "[]")


@pytest.mark.parametrize(
    "overrides, key, listed",
    [
        pytest.param(
            (*_NO_CHECKS, f"{_KEY}.OUT_FEATURES", "['layer2', 'layer3', 'layer4']", f"{_KEY}.REMAPS", "['c3', 'c4']"),
            f"{_KEY}.REMAPS",
            ["layer2, layer3, layer4"],
            id="remaps-length",
        ),
        pytest.param(
            (
                f"{_KEY}.STRIDES",
                "[4, 8, 16]",
            ),
            f"{_KEY}.STRIDES",
            ["layer1, layer2, layer3, layer4"],
            id="strides-length",
        ),
        pytest.param(
            (
                f"{_KEY}.CHANNELS",
                "[64]",
            ),
            f"{_KEY}.CHANNELS",
            ["layer1, layer2, layer3, layer4"],
            id="channels-length",
        ),
        pytest.param(
            (*_NO_CHECKS, f"{_KEY}.OUT_FEATURES", "['layer1', 'layer9']"),
            f"{_KEY}.OUT_FEATURES",
            ["'layer9'", "act1 (res1), layer1 (res2), layer2 (res3), layer3 (res4), layer4 (res5)"],
            id="unknown-feature",
        ),
        pytest.param(
            (*_NO_CHECKS, f"{_KEY}.OUT_FEATURES", "['layer1', 'res2']"),
            f"{_KEY}.OUT_FEATURES",
            ["twice", "layer1 (res2)"],
            id="feature-twice",
        ),
        pytest.param(
            (
                f"{_KEY}.STRIDES",
                "[4, 8, 16, 64]",
            ),
            f"{_KEY}.STRIDES",
            ["64", "[4, 8, 16, 32]"],
            id="stride-contradicts",
        ),
        pytest.param(
            (
                f"{_KEY}.CHANNELS",
                "[64, 128, 256, 1024]",
            ),
            f"{_KEY}.CHANNELS",
            ["1024", "[64, 128, 256, 512]"],
            id="channels-contradict",
        ),
        pytest.param(
            (
                f"{_KEY}.REMAPS",
                "['a', 'a', 'b', 'c']",
            ),
            f"{_KEY}.REMAPS",
            ["repeats"],
            id="remaps-repeat",
        ),
        pytest.param(
            (
                f"{_KEY}.PRETRAINED",
                "/nonexistent/weights.pth",
            ),
            f"{_KEY}.PRETRAINED",
            ["/nonexistent/weights.pth", "false, true"],
            id="pretrained-path",
        ),
        pytest.param(
            (
                f"{_KEY}.REMOVE_LAYERS",
                "['layer9.fc']",
            ),
            f"{_KEY}.REMOVE_LAYERS",
            ["'layer9.fc'", "conv1", "layer1", "layer1.0"],
            id="remove-layers",
        ),
        pytest.param(
            (
                "MODEL.FPN.IN_FEATURES",
                "['res2', 'res4', 'res5']",
            ),
            "MODEL.FPN.IN_FEATURES",
            ["[4, 16, 32]", "res2, res3, res4, res5"],
            id="fpn-not-doubling",
        ),
        pytest.param(
            (
                "MODEL.FPN.IN_FEATURES",
                "['res3', 'res4', 'res5', 'p6']",
            ),
            "MODEL.FPN.IN_FEATURES",
            ["'p6'", "res2, res3, res4, res5"],
            id="fpn-unknown-level",
        ),
    ],
)
def test_bad_config_values_name_the_key_and_the_valid_values(overrides, key, listed):
    with pytest.raises(ValueError) as info:
        build_backbone(model_config("resnet18", "resnet", overrides=overrides), device="meta")
    message = str(info.value)
    assert message.startswith(key), message
    for text in listed:
        assert text in message, f"{text!r} not in {message!r}"


def test_remaps_rename_outputs_and_feed_the_fpn():
    overrides = (f"{_KEY}.REMAPS", "['c2', 'c3', 'c4', 'c5']", "MODEL.FPN.IN_FEATURES", "['c3', 'c4', 'c5']")
    fpn = build_backbone(model_config("resnet18", "resnet", overrides=overrides), device="meta")
    assert list(fpn.bottom_up.output_shape()) == ["c2", "c3", "c4", "c5"]
    assert {n: s.stride for n, s in fpn.output_shape().items()} == {"p3": 8, "p4": 16, "p5": 32, "p6": 64}
    out = fpn(torch.empty(1, 3, 128, 192, device="meta"))
    assert tuple(out["p6"].shape) == (1, 256, 2, 3)


def test_out_features_by_feature_name_and_removed_layers():
    overrides = (*_NO_CHECKS, f"{_KEY}.OUT_FEATURES", "['res1', 'res3']", f"{_KEY}.REMOVE_LAYERS", "['layer2.1']")
    plain = build_backbone(model_config("resnet18", "resnet", fpn=False, overrides=overrides), device="meta")
    assert {n: (s.channels, s.stride) for n, s in plain.output_shape().items()} == {"res1": (64, 2), "res3": (128, 8)}
    assert isinstance(plain.body.layer2[1], torch.nn.Identity)
    out = plain(torch.empty(1, 3, 64, 96, device="meta"))
    assert {n: tuple(t.shape) for n, t in out.items()} == {"res1": (1, 64, 32, 48), "res3": (1, 128, 8, 12)}


# ------------------------------------------------------------------- import hygiene


def test_importing_the_package_is_lazy_self_contained_and_idempotent():
    """``import generated`` imports no model module and none of the build tools; a
    builder import registers it; the same module imported under a second package path
    (a second sys.path entry) is accepted by the registry instead of crashing."""
    result = python_subprocess(textwrap.dedent(f"""
            import sys
            import generated
            models = [m for m in sys.modules if m.startswith("generated.") and not m.startswith("generated.runtime")]
            assert not models, models
            from generated import build_resnet18_fpn_backbone, Resnet18Backbone
            from detectron2.modeling import BACKBONE_REGISTRY
            assert BACKBONE_REGISTRY.get("build_resnet18_fpn_backbone") is build_resnet18_fpn_backbone
            assert Resnet18Backbone.TIMM_MODEL == "resnet18" and "build_resnet50_backbone" in dir(generated)
            assert "generated.resnet.resnet50" not in sys.modules
            assert generated.ensure_registered("build_resnet_fpn_backbone") is False  # detectron2's own
            build_tools = [m for m in ("jinja2", "black", "click", "pebble", "generator") if m in sys.modules]
            assert not build_tools, build_tools

            sys.path.insert(0, {str(ROOT.parent)!r})
            second = __import__({ROOT.name + ".generated.resnet.resnet18"!r}, fromlist=["x"])
            first = sys.modules["generated.resnet.resnet18"]
            assert first is not second
            assert BACKBONE_REGISTRY.get("build_resnet18_fpn_backbone") is first.build_resnet18_fpn_backbone
            print("ok")
            """))
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


def test_model_module_suggests_close_names():
    import generated

    with pytest.raises(KeyError, match="resnet18"):
        generated.model_module("resnet19")


def test_size_divisibility_pads_odd_inputs():
    """An input that is no multiple of the divisibility is padded by detectron2's
    ImageList before the backbone sees it (the FPN's size_divisibility is 32)."""
    from detectron2.structures import ImageList

    fpn = build_backbone(model_config("resnet18", "resnet"), device="meta")
    assert fpn.size_divisibility == 32
    images = ImageList.from_tensors([torch.empty(3, 300, 401, device="meta")], fpn.size_divisibility)
    assert tuple(images.tensor.shape[-2:]) == (320, 416)
    out = fpn(images.tensor)
    assert tuple(out["p6"].shape[-2:]) == (math.ceil(320 / 64), math.ceil(416 / 64))


@pytest.mark.parametrize(
    "model, family, overrides",
    [
        ("resnet18", "resnet", []),
        ("swin_tiny_patch4_window7_224", "swin_transformer", []),
        ("vit_tiny_patch16_224", "vision_transformer", []),
        ("maxvit_rmlp_nano_rw_256", "maxxvit", []),
        ("levit_128s", "levit", ["MODEL.BACKBONE.CONFIG.IMG_SIZE", "256"]),
    ],
    ids=["resnet", "swin", "vit-pyramid", "maxvit-windows", "levit-fixed"],
)
def test_any_input_size_gives_what_detectron2s_padding_gives(model, family, overrides):
    """The FPN variant fed an odd size pads it itself: its maps are those of the batch
    detectron2 pads to its size_divisibility, cropped to ceil(input / stride). Fed that
    padded batch, it hands the very tensor to timm's model: its own padding copies nothing."""
    from detectron2.structures import ImageList

    torch.manual_seed(0)
    fpn = build_backbone(model_config(model, family, overrides=overrides)).eval()
    x = torch.randn(1, 3, 201, 251)
    padded = ImageList.from_tensors([x[0]], fpn.size_divisibility).tensor
    assert padded.shape[-1] % fpn.size_divisibility == 0 and padded.shape[-1] > x.shape[-1]
    seen = []
    hook = fpn.bottom_up.body.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    try:
        with torch.no_grad():
            odd, reference = fpn(x), fpn(padded)
    finally:
        hook.remove()
    assert seen[1] is padded, "the padded batch reached timm's model through a copy"
    for name, shape in fpn.output_shape().items():
        h, w = math.ceil(201 / shape.stride), math.ceil(251 / shape.stride)
        assert tuple(odd[name].shape) == (1, shape.channels, h, w)
        torch.testing.assert_close(odd[name], reference[name][..., :h, :w], msg=name)


# ------------------------------------------------------- the LazyConfig seeds, real tensors

#: 20 families of :data:`SAMPLE`: every kind of handling (NHWC, the simple pyramid, dynamic
#: sizes, fixed sizes moved to another side, strides 16/32/64, odd strides, unpadded
#: convolutions, wrappers without stage paths).
LAZY_SAMPLE = [
    (model, family) for model, family in SAMPLE
    if family not in {"ghostnet", "repvit", "edgenext", "tiny_vit", "hgnet", "fasternet", "efficientnet",
                      "mobilenetv3", "regnet", "deit"}
]  # fmt: skip


def test_the_lazy_sample_spans_twenty_families():
    assert len({family for _, family in LAZY_SAMPLE}) >= 20


@pytest.mark.parametrize("model, family", LAZY_SAMPLE, ids=[m for m, _ in LAZY_SAMPLE])
def test_lazy_seed_trains_and_infers(model, family):
    """The model of ``configs/<family>/<model>_mask_rcnn.py`` as it stands, with the edits a
    CPU run needs (three classes, few proposals, a fixed-size model built at a CPU-sized
    side): one training step (finite losses, gradients in the backbone) and inference."""
    from detectron2.config import LazyConfig, instantiate
    from detectron2.utils.events import EventStorage

    from tests.helpers import lazy_seed_path

    cfg = LazyConfig.load(str(lazy_seed_path(model, family)))
    (h, w), overrides = _sample_setting(model, family)
    if overrides:
        cfg.model.backbone.bottom_up.img_size = int(overrides[1])
    cfg.model.roi_heads.num_classes = NUM_CLASSES
    cfg.model.roi_heads.batch_size_per_image = 64
    cfg.model.proposal_generator.batch_size_per_image = 64
    cfg.model.proposal_generator.pre_nms_topk = (200, 200)
    cfg.model.proposal_generator.post_nms_topk = (100, 50)
    torch.manual_seed(0)
    net = instantiate(cfg.model)
    assert type(net.backbone.bottom_up).TIMM_MODEL == model
    net.train()
    with EventStorage():
        losses = net([{"image": _image(0, (h, w)), "instances": _instances((h, w)), "height": h, "width": w}])
    assert all(torch.isfinite(v) for v in losses.values()), losses
    sum(losses.values()).backward()
    grads = [p.grad for p in net.backbone.bottom_up.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    net.eval()
    with torch.no_grad():
        (output,) = net([{"image": _image(1, (h, w)), "height": h, "width": w}])
    assert output["instances"].image_size == (h, w)
