"""Training options (runtime/training.py): activation checkpointing gives the losses and
gradients of a run without it, through detectron2's Mask R-CNN built from the FPN seed,
and really recomputes the blocks; drop path acts in training only; the batch norm
conversions keep timm's fused activations; bad values name the key; a bf16 CPU autocast
forward runs for a sample of families."""

from __future__ import annotations

import functools

import pytest
import torch

from tests.helpers import build_backbone, model_config

#: A CNN (BatchNorm), a ViT through timm's FeatureGetterNet (no set_grad_checkpointing), a
#: window model with NHWC maps, a ConvNeXt.
CHECKPOINT_SAMPLE = [
    ("resnet18", "resnet", []),
    ("vit_tiny_patch16_224", "vision_transformer", []),
    ("swin_tiny_patch4_window7_224", "swin_transformer", []),
    ("convnext_atto", "convnext", []),
]
SMALL = ["MODEL.DEVICE", "cpu", "MODEL.ROI_HEADS.NUM_CLASSES", "3", "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "32",
         "MODEL.RPN.POST_NMS_TOPK_TRAIN", "50", "MODEL.BACKBONE.CONFIG.NORM", "FrozenBN"]  # fmt: skip
SIZE = (192, 224)


def _batch():
    from detectron2.structures import BitMasks, Boxes, Instances

    h, w = SIZE
    image = torch.randint(0, 256, (3, h, w), generator=torch.Generator().manual_seed(0)).float()
    masks = torch.zeros(1, h, w, dtype=torch.bool)
    masks[0, 20:120, 30:150] = True
    gt = Instances(SIZE, gt_boxes=Boxes(torch.tensor([[30.0, 20.0, 150.0, 120.0]])), gt_classes=torch.tensor([1]), gt_masks=BitMasks(masks))
    return [{"image": image, "instances": gt, "height": h, "width": w}]


def _step(model, family, overrides, checkpointed: bool):
    from detectron2.modeling import build_model
    from detectron2.utils.events import EventStorage

    cfg = model_config(model, family, overrides=SMALL + overrides + ["MODEL.BACKBONE.CONFIG.ACTIVATION_CHECKPOINT", str(checkpointed)])
    torch.manual_seed(0)
    net = build_model(cfg).train()
    body = net.backbone.bottom_up
    calls = []
    if checkpointed:  # a layer inside the first checkpointed block: called again when it is recomputed
        block = next(m for m in body.body.modules() if isinstance(m.__dict__.get("forward"), functools.partial))
        inner = next(m for m in block.modules() if m is not block and next(m.parameters(recurse=False), None) is not None)
        inner.register_forward_hook(lambda *a: calls.append(torch.is_grad_enabled()))
    torch.manual_seed(1)
    with EventStorage():
        losses = net(_batch())
    total = sum(losses.values())
    total.backward()
    grads = {name: p.grad.clone() for name, p in net.named_parameters() if p.grad is not None}
    return {k: float(v) for k, v in losses.items()}, grads, calls, body.checkpointed_blocks


@pytest.mark.parametrize("model, family, overrides", CHECKPOINT_SAMPLE, ids=[m for m, _, _ in CHECKPOINT_SAMPLE])
def test_activation_checkpointing_changes_nothing_but_memory(model, family, overrides):
    plain_losses, plain_grads, _, none = _step(model, family, overrides, False)
    losses, grads, calls, blocks = _step(model, family, overrides, True)
    assert none == 0 and blocks >= 2
    assert len(calls) == 2  # run in the forward pass, and again when the backward pass recomputed it
    assert losses == pytest.approx(plain_losses, rel=1e-5, abs=1e-6)
    assert set(grads) == set(plain_grads)
    for name in grads:
        torch.testing.assert_close(grads[name], plain_grads[name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("model, family, block_types", [
    ("mvitv2_tiny", "mvitv2", {"MultiScaleBlock"}),  # stages in a container, each with its blocks
    ("efficientnet_b0", "efficientnet", {"DepthwiseSeparableConv", "InvertedResidual"}),  # stages are Sequentials
    ("eca_botnext26ts_256", "byoanet", {"BottleneckBlock", "SelfAttnBlock"}),  # a stage of two kinds of block
    ("resnet18", "resnet", {"BasicBlock"}),
])  # fmt: skip
def test_checkpointing_recomputes_each_block_on_its_own(model, family, block_types):
    """Every block of timm's model is checkpointed, alone or as the one block of its stage,
    never two in one recomputation."""
    cfg = model_config(model, family, fpn=False, overrides=["MODEL.BACKBONE.CONFIG.ACTIVATION_CHECKPOINT", "True"])
    backbone = build_backbone(cfg, "meta")
    wrapped = [m for m in backbone.body.modules() if isinstance(m.__dict__.get("forward"), functools.partial)]
    blocks = [m for m in backbone.body.modules() if type(m).__name__ in block_types]
    assert len(blocks) > 1 and len(wrapped) == backbone.checkpointed_blocks
    for block in blocks:
        holders = [m for m in wrapped if any(inner is block for inner in m.modules())]
        assert len(holders) == 1, f"{type(block).__name__} in {len(holders)} checkpointed modules"
    for holder in wrapped:
        assert sum(any(inner is b for b in blocks) for inner in holder.modules()) <= 1


def test_checkpointing_keeps_the_parameter_names():
    plain = build_backbone(model_config("resnet18", "resnet", fpn=False), "cpu")
    checkpointed = build_backbone(model_config("resnet18", "resnet", fpn=False, overrides=["MODEL.BACKBONE.CONFIG.ACTIVATION_CHECKPOINT", "True"]), "cpu")
    assert list(plain.state_dict()) == list(checkpointed.state_dict())


def _index_tables(module):
    """(module path, name, tensor) of every integer buffer registered as not persistent."""
    return [
        (path, name, sub._buffers[name])
        for path, sub in module.named_modules()
        for name in sorted(sub._non_persistent_buffers_set)
        if sub._buffers.get(name) is not None and not sub._buffers[name].is_floating_point()
    ]


def test_equal_index_tables_are_held_once_also_after_a_move():
    cfg = model_config("beit_base_patch16_224", "beit", fpn=False, overrides=["MODEL.BACKBONE.CONFIG.IMG_SIZE", "256"])
    backbone = build_backbone(cfg, "cpu")
    blocks = [block for block in backbone.body.modules() if type(block).__name__ == "Attention"]
    tables = _index_tables(backbone)
    assert len(tables) == len(blocks) > 1 and {name for _, name, _ in tables} == {"relative_position_index"}
    assert len({id(table) for _, _, table in tables}) == 1
    keys = list(backbone.state_dict())
    backbone._apply(lambda t: t.clone())  # what .to(another device) does: a copy of each buffer on its own
    assert len({id(table) for _, _, table in _index_tables(backbone)}) == 1
    assert list(backbone.state_dict()) == keys
    grid = 256 // 16
    assert tables[0][2].shape == (grid * grid + 1, grid * grid + 1)


def test_index_tables_are_shared_only_when_equal():
    from generated.runtime.training import share_index_tables

    def block(table):
        module = torch.nn.Module()
        module.register_buffer("index", table, persistent=False)
        module.register_buffer("kept", table.clone())  # persistent: in the state dict, never shared
        module.register_buffer("coords", table.float(), persistent=False)  # floating point: never shared
        return module

    first, second, third = torch.arange(6).view(2, 3), torch.arange(6).view(2, 3), torch.arange(6).view(2, 3).flip(1)
    root = torch.nn.Sequential(block(first), block(second), block(third), block(torch.arange(6)))
    assert share_index_tables(root) == 1
    assert root[1].index is root[0].index and root[2].index is third and root[3].index.shape == (6,)
    assert root[1].kept is not root[0].kept and root[1].coords is not root[0].coords
    assert share_index_tables(root) == 0


def test_drop_path_acts_in_training_only():
    cfg = model_config("convnext_atto", "convnext", fpn=False, overrides=["MODEL.BACKBONE.CONFIG.DROP_PATH_RATE", "0.5"])
    backbone = build_backbone(cfg, "cpu")
    image = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    backbone.train()
    with torch.no_grad():
        a, b = backbone(image)["res5"], backbone(image)["res5"]
    assert not torch.allclose(a, b)
    backbone.eval()
    with torch.no_grad():
        torch.testing.assert_close(backbone(image)["res5"], backbone(image)["res5"])


def test_drop_path_on_a_model_without_it_names_the_key():
    cfg = model_config("vgg11", "vgg", fpn=False, overrides=["MODEL.BACKBONE.CONFIG.DROP_PATH_RATE", "0.1"])
    with pytest.raises(ValueError, match=r"DROP_PATH_RATE: 0\.1 is not valid for vgg11, whose timm model has no drop path"):
        build_backbone(cfg, "meta")


def test_frozen_and_sync_batch_norm_keep_fused_activations():
    from timm.layers import BatchNormAct2d
    from timm.layers.norm_act import FrozenBatchNormAct2d, SyncBatchNormAct

    built = build_backbone(model_config("efficientnet_b0", "efficientnet", fpn=False), "meta").body
    acts = {path: type(m.act) for path, m in built.named_modules() if type(m) is BatchNormAct2d}
    assert torch.nn.SiLU in set(acts.values())
    for norm, kind in (("FrozenBN", FrozenBatchNormAct2d), ("SyncBN", SyncBatchNormAct)):
        cfg = model_config("efficientnet_b0", "efficientnet", fpn=False, overrides=["MODEL.BACKBONE.CONFIG.NORM", norm])
        body = build_backbone(cfg, "meta").body
        converted = {path: m for path, m in body.named_modules() if isinstance(m, kind)}
        assert set(converted) == set(acts)
        assert {path: type(m.act) for path, m in converted.items()} == acts


@pytest.mark.parametrize(
    "key, value, listed",
    [("NORM", "GN2", r"NORM: 'GN2' is not valid for resnet18; valid: '' \(as timm builds it\), BN, FrozenBN, SyncBN")],
)
def test_bad_values_name_the_key(key, value, listed):
    cfg = model_config("resnet18", "resnet", fpn=False, overrides=[f"MODEL.BACKBONE.CONFIG.{key}", value])
    with pytest.raises(ValueError, match=listed):
        build_backbone(cfg, "meta")


@pytest.mark.parametrize("model, family, overrides", CHECKPOINT_SAMPLE, ids=[m for m, _, _ in CHECKPOINT_SAMPLE])
def test_a_bf16_cpu_autocast_forward_runs(model, family, overrides):
    cfg = model_config(model, family, overrides=["MODEL.DEVICE", "cpu"] + overrides)
    fpn = build_backbone(cfg, "cpu").eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        maps = fpn(torch.randn(1, 3, *SIZE))
    assert all(torch.isfinite(m.float()).all() for m in maps.values())
    assert {m.dtype for m in maps.values()} <= {torch.bfloat16, torch.float32}
