"""Weights in and out: tools/convert_timm_to_d2.py and MODEL.BACKBONE.CONFIG.PRETRAINED.

Checkpoints are written here from randomly initialised timm models (nothing can be
downloaded). Three tiny models cover the three naming cases: test_resnet (names kept),
test_convnext (FeatureListNet flattens ``stages.0`` to ``stages_0``) and
test_efficientnet (EfficientNetFeatures, a class of its own), with and without FPN.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tools import convert_timm_to_d2 as conv
from tools import train_net

ROOT = Path(__file__).resolve().parent.parent

CASES = [
    ("test_resnet", "resnet", True),
    ("test_convnext", "convnext", True),
    ("test_efficientnet", "efficientnet", False),
]


def _cfg(model: str, family: str, fpn: bool, *opts: str):
    config = ROOT / "configs" / family / f"{model}{'_fpn' if fpn else ''}.yaml"
    args = train_net.argument_parser().parse_args(["--config-file", str(config), "MODEL.DEVICE", "cpu", *opts])
    cfg = train_net.build_config(args)
    train_net.ensure_backbone(cfg)
    return cfg


def _timm_state(model: str, seed: int = 0):
    import timm

    torch.manual_seed(seed)
    net = timm.create_model(model, pretrained=False)
    with torch.no_grad():  # make running stats distinguishable from their defaults
        for name, buffer in net.named_buffers():
            if buffer.is_floating_point():
                buffer.uniform_(0.5, 1.5)
    return net.state_dict()


def _load_through_detectron2(cfg, path: Path):
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    model = build_model(cfg)
    checkpointer = DetectionCheckpointer(model)
    incompatible = checkpointer._load_model(checkpointer._load_file(str(path)))
    return model, incompatible


@pytest.mark.parametrize("model, family, fpn", CASES, ids=[c[0] for c in CASES])
def test_convert_round_trip_through_detection_checkpointer(tmp_path, model, family, fpn):
    cfg = _cfg(model, family, fpn)
    state = _timm_state(model)
    source = tmp_path / f"{model}.pth"
    torch.save({"state_dict": state}, source)  # nested, as many training scripts save
    target = tmp_path / f"{model}_d2.pth"
    assert conv.main(["--config-file", str(ROOT / "configs" / family / f"{model}{'_fpn' if fpn else ''}.yaml"),
                      "--input", str(source), "--output", str(target)]) == 0  # fmt: skip
    saved = torch.load(target, map_location="cpu", weights_only=True)
    assert saved["__author__"] == "d2timm" and saved["matching_heuristics"] is False
    prefix = "backbone.bottom_up.body." if fpn else "backbone.body."
    assert saved["model"] and all(k.startswith(prefix) for k in saved["model"])

    model_, incompatible = _load_through_detectron2(cfg, target)
    body_missing = [k for k in incompatible.missing_keys if k.startswith(prefix)]
    assert body_missing == [] and incompatible.unexpected_keys == [] and not incompatible.incorrect_shapes
    loaded = model_.state_dict()
    result = conv.convert(cfg, state)
    assert len(result.converted) == len(saved["model"])
    for timm_key, d2_key in result.converted:
        assert torch.equal(loaded[d2_key], state[timm_key]), (timm_key, d2_key)
    # Only keys the features model does not hold are dropped: the classifier and its head.
    assert result.dropped and all(("head" in k or "fc" in k or "classifier" in k or "bn2" in k) for k in result.dropped)


def test_flattened_sequential_names_are_mapped():
    cfg = _cfg("test_convnext", "convnext", True)
    result = conv.convert(cfg, _timm_state("test_convnext"))
    pairs = dict(result.converted)
    assert pairs["stages.0.blocks.0.conv_dw.weight"] == "backbone.bottom_up.body.stages_0.blocks.0.conv_dw.weight"


def test_safetensors_and_ddp_prefix(tmp_path):
    from safetensors.torch import save_file

    cfg = _cfg("test_resnet", "resnet", True)
    state = _timm_state("test_resnet")
    path = tmp_path / "w.safetensors"
    save_file({f"module.{k}": v.contiguous() for k, v in state.items()}, str(path))
    loaded = conv.load_timm_state_dict(path)
    assert set(loaded) == set(state)
    result = conv.convert(cfg, loaded, source=str(path))
    assert torch.equal(result["model"]["backbone.bottom_up.body.conv1.0.weight"], state["conv1.0.weight"])


def test_corrupt_file_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(conv.CheckpointError, match="broken.pth"):
        conv.load_timm_state_dict(bad)
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    with pytest.raises(conv.CheckpointError, match="cut.safetensors"):
        conv.load_timm_state_dict(truncated)
    pickled = tmp_path / "pickled.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "args": __import__("argparse").Namespace(lr=0.1)}, pickled)
    with pytest.raises(conv.CheckpointError, match="pickled.pth"):  # weights_only refuses objects
        conv.load_timm_state_dict(pickled)
    assert conv.main(["--config-file", str(ROOT / "configs/resnet/test_resnet_fpn.yaml"),
                      "--input", str(bad), "--output", str(tmp_path / "o.pth")]) == 2  # fmt: skip
    assert "broken.pth" in capsys.readouterr().err
    assert not (tmp_path / "o.pth").exists()


def test_mismatched_checkpoint_names_file_and_first_bad_keys(tmp_path):
    cfg = _cfg("test_resnet", "resnet", True)
    other = tmp_path / "convnext.pth"
    torch.save(_timm_state("test_convnext"), other)
    with pytest.raises(conv.CheckpointError) as info:
        conv.convert(cfg, conv.load_timm_state_dict(other), source=str(other))
    message = str(info.value)
    assert "convnext.pth" in message and "test_resnet" in message
    assert "missing" in message and "conv1.0.weight" in message and "stages.0" in message

    state = _timm_state("test_resnet")
    state["layer1.0.conv1.weight"] = state["layer1.0.conv1.weight"][:, :1]
    with pytest.raises(conv.CheckpointError, match=r"wrong shape: layer1\.0\.conv1\.weight"):
        conv.convert(cfg, state, source="resized.pth")


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_pretrained_path_loads_the_file_into_the_backbone(tmp_path, suffix):
    from detectron2.modeling import build_backbone

    state = _timm_state("test_convnext", seed=1)
    path = tmp_path / f"test_convnext{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    cfg = _cfg("test_convnext", "convnext", True, "MODEL.BACKBONE.CONFIG.PRETRAINED", str(path))
    backbone = build_backbone(cfg)
    body = backbone.bottom_up.body.state_dict()
    mapping = conv.key_mapping(backbone.bottom_up.body, __import__("timm").create_model("test_convnext"))
    assert len(mapping) == len(body)
    for timm_key, body_key in mapping.items():
        assert torch.equal(body[body_key], state[timm_key]), timm_key
    # and not by chance: without PRETRAINED the weights differ
    fresh = build_backbone(_cfg("test_convnext", "convnext", True)).bottom_up.body.state_dict()
    assert not torch.equal(fresh["stem_0.weight"], state["stem.0.weight"])


def test_pretrained_path_that_does_not_fit_is_a_clear_error(tmp_path):
    from detectron2.modeling import build_backbone

    path = tmp_path / "resnet_weights.pth"
    torch.save(_timm_state("test_resnet"), path)
    cfg = _cfg("test_convnext", "convnext", True, "MODEL.BACKBONE.CONFIG.PRETRAINED", str(path))
    with pytest.raises(Exception, match="resnet_weights.pth"):
        build_backbone(cfg)
