"""Every model of the checked-in package, built through detectron2's registry from its
emitted YAML, on the meta device (no memory, no weights, no compute).

* every model: the FPN backbone (``<model>_fpn.yaml``) and its plain bottom-up declare
  exactly what the YAML and the class constants say (names p<k> from RPN.IN_FEATURES,
  256 channels, strides 2**k; the plain outputs, channels and strides of OUT_FEATURES),
  and the plain seed (``<model>.yaml``) names a registered builder with the same CONFIG;
* forwards at 384x512 and 448x320 of the FPN backbone and of the plain backbone built
  from ``<model>.yaml`` return those maps with spatial size ceil(input / stride): a
  deterministic sample in the default run, every other model in the ``slow`` run (meta
  forwards of the large EfficientNets take seconds each).

No model needs an off-by-one allowance: timm's SAME padding (tf_*) gives ceil too.
"""

from __future__ import annotations

import pytest
import torch
from detectron2.modeling import BACKBONE_REGISTRY

from tests.helpers import MANIFEST, build_backbone, ceil_div, load_json, model_config, repo_models

MODELS = repo_models()
SPECS = load_json(MANIFEST)["models"]
FAMILY = dict(MODELS)
INPUT_SIZES = ((384, 512), (448, 320))
FPN_CHANNELS = 256
#: Every model of these families has levels at strides 4..32 (res2..res5): p2..p6.
P2_TO_P6_FAMILIES = {"convnext", "efficientnet", "mobilenetv3", "regnet", "resnet"}

#: Always forwarded: the real-compute sample, SAME-padding (tf_) variants, and the first
#: model of each family; plus every 10th model in name order.
HAND_PICKED = (
    "convnext_atto",
    "efficientnet_b0",
    "mobilenetv3_small_050",
    "regnetx_002",
    "resnet18",
    "tf_efficientnet_b0",
    "tf_mobilenetv3_small_075",
    "resnet50d",
    "convnext_atto_ols",
)
FORWARD_SAMPLE = sorted(
    set(HAND_PICKED)
    | {name for name, _ in MODELS[::10]}
    | {min(name for name, fam in MODELS if fam == family) for family in set(FAMILY.values())}
)
FORWARD_REST = [name for name, _ in MODELS if name not in FORWARD_SAMPLE]


def test_sample_is_in_the_package():
    assert set(HAND_PICKED) <= set(FAMILY), sorted(set(HAND_PICKED) - set(FAMILY))
    assert len(MODELS) >= 296


def _fpn_on_meta(model: str):
    cfg = model_config(model, FAMILY[model])
    return cfg, build_backbone(cfg, device="meta")


def _expected_fpn(cfg) -> dict:
    """p<k> -> stride, from the YAML's RPN.IN_FEATURES (what the heads will read)."""
    return {name: 2 ** int(name[1:]) for name in cfg.MODEL.RPN.IN_FEATURES}


def _expected_plain(cls) -> dict:
    """name -> (channels, stride) of the default outputs, from the class constants."""
    features = {f.name: f for f in cls.FEATURES}
    return {name: (features[name].channels, features[name].stride) for name in cls.OUT_FEATURES}


@pytest.mark.parametrize("model", list(FAMILY))
def test_declared_shapes(model):
    cfg, fpn = _fpn_on_meta(model)
    plain, cls = fpn.bottom_up, type(fpn.bottom_up)
    # the FPN: exactly the levels the heads read, 256 channels, stride 2**k
    shapes = fpn.output_shape()
    assert list(shapes) == list(cfg.MODEL.RPN.IN_FEATURES)
    if FAMILY[model] in P2_TO_P6_FAMILIES:
        assert list(shapes) == ["p2", "p3", "p4", "p5", "p6"]
    assert {n: (s.channels, s.stride) for n, s in shapes.items()} == {
        n: (FPN_CHANNELS, stride) for n, stride in _expected_fpn(cfg).items()
    }
    assert list(cfg.MODEL.ROI_HEADS.IN_FEATURES) == list(shapes)[:-1]
    # the plain bottom-up: the class constants, which the YAML repeats
    assert cls.TIMM_MODEL == model
    assert plain._out_features == list(cls.OUT_FEATURES)
    assert {n: (s.channels, s.stride) for n, s in plain.output_shape().items()} == _expected_plain(cls)
    config = cfg.MODEL.BACKBONE.CONFIG
    features = {f.name: f for f in cls.FEATURES}
    assert list(config.REMAPS) == list(cls.OUT_FEATURES)
    assert list(config.OUT_FEATURES) == [features[n].module for n in cls.OUT_FEATURES]
    assert list(config.STRIDES) == [features[n].stride for n in cls.OUT_FEATURES]
    assert list(config.CHANNELS) == [features[n].channels for n in cls.OUT_FEATURES]
    assert list(cfg.MODEL.FPN.IN_FEATURES) == list(cls.FPN_IN_FEATURES)
    assert plain.size_divisibility == cls.SIZE_DIVISIBILITY
    # the plain seed: its own registered builder, the same backbone CONFIG, heads on the
    # coarsest default output
    plain_cfg = model_config(model, FAMILY[model], fpn=False)
    assert plain_cfg.MODEL.BACKBONE.NAME == f"build_{model}_backbone"
    assert plain_cfg.MODEL.BACKBONE.NAME in BACKBONE_REGISTRY
    assert plain_cfg.MODEL.BACKBONE.CONFIG == config
    assert list(plain_cfg.MODEL.RPN.IN_FEATURES) == list(plain_cfg.MODEL.ROI_HEADS.IN_FEATURES) == [cls.OUT_FEATURES[-1]]
    # the class states the spec recorded in the manifest
    spec = SPECS[model]
    assert list(cls.OUT_FEATURES) == spec["out_features"]
    assert [f._asdict() for f in cls.FEATURES] == [
        {k: f[k] for k in ("name", "module", "path", "index", "channels", "stride")} for f in spec["features"]
    ]


def _maps(backbone, h: int, w: int) -> dict:
    with torch.no_grad():
        return {n: tuple(t.shape) for n, t in backbone(torch.empty(1, 3, h, w, device="meta")).items()}


def _check_forward(model: str) -> None:
    cfg, fpn = _fpn_on_meta(model)
    plain = build_backbone(model_config(model, FAMILY[model], fpn=False), device="meta")
    assert type(plain) is type(fpn.bottom_up)
    expected_plain = _expected_plain(type(plain))
    captured = {}
    handle = fpn.bottom_up.register_forward_hook(lambda module, args, output: captured.update(output))
    fpn.eval(), plain.eval()
    try:
        for h, w in INPUT_SIZES:
            assert _maps(fpn, h, w) == {
                n: (1, FPN_CHANNELS, ceil_div(h, s), ceil_div(w, s)) for n, s in _expected_fpn(cfg).items()
            }, f"FPN outputs at {h}x{w}"
            plain_maps = {n: (1, c, ceil_div(h, s), ceil_div(w, s)) for n, (c, s) in expected_plain.items()}
            assert _maps(plain, h, w) == plain_maps, f"plain outputs at {h}x{w}"
            assert {n: tuple(t.shape) for n, t in captured.items()} == plain_maps, f"FPN bottom-up at {h}x{w}"
    finally:
        handle.remove()


@pytest.mark.parametrize("model", FORWARD_SAMPLE)
def test_forward_shapes_sample(model):
    _check_forward(model)


@pytest.mark.slow
@pytest.mark.parametrize("model", FORWARD_REST)
def test_forward_shapes_all_others(model):
    _check_forward(model)
