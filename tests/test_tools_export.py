"""tools/export.py: a generated backbone with its FPN, and the whole detector, exports to ONNX, TorchScript and a
torch.export program; the file, loaded back, equals eager on the export size and (dynamic
exports) on a batch of two at a size that is not a multiple of 32; failures exit 1 naming
the construct, bad arguments exit 2."""

from __future__ import annotations

import re
from typing import List

import pytest
import torch

pytest.importorskip("onnxruntime", reason="onnxruntime is pinned in requirements/test.txt: `make install`")

from tests.helpers import ROOT, generated_class, manifest_of  # noqa: E402
from tests.test_tasks import _seed_file, seeded  # noqa: E402,F401 (the task seeds' shared fixture)
from tools import export  # noqa: E402
from tools.dev import sweep  # noqa: E402

#: One model per family, as the sweep picks them (the smallest), within the sweep's bound.
FAMILY_SAMPLE = [
    (m.name, m.family)
    for m in sweep.family_sample(sweep.catalog(manifest_of(ROOT / "generated")))
    if m.params <= sweep.DEFAULT_MAX_PARAMS
]

RESNET = str(ROOT / "configs" / "resnet" / "resnet18_fpn.yaml")
SMALL = ["--size", "128x160"]


def _run(capsys, *args):
    code = export.main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_a_static_export_equals_eager(tmp_path, capsys, fmt):
    output = tmp_path / f"resnet18.{fmt}"
    code, out, err = _run(capsys, "--config-file", RESNET, "--format", fmt, "--output", output, *SMALL)
    assert code == 0, err
    assert output.is_file() and output.stat().st_size > 1000
    assert [line.split()[1] for line in out.splitlines() if line.startswith("1x3x128x160")] == ["p2:", "p3:", "p4:", "p5:", "p6:"]
    assert "equal to eager within 0.0001" in out


def test_a_simple_pyramid_over_stride_32_resizes_p2_in_the_graph_as_in_eager(tmp_path, capsys):
    """Two transposed convolutions take a stride-32 map (vit_tiny_r_s16_p8_224) to stride 8:
    p2 is resized to stride 4, which the traced graph must do too (it zero-padded before)."""
    config = ROOT / "configs" / "vision_transformer_hybrid" / "vit_tiny_r_s16_p8_224_fpn.yaml"
    code, out, err = _run(capsys, "--config-file", config, "--format", "torchscript", "--output", tmp_path / "m.ts", *SMALL)
    assert code == 0, err
    assert "equal to eager within 0.0001" in out


@pytest.mark.parametrize("fmt", ["onnx", "exported-program"])
@pytest.mark.parametrize("config", [RESNET, str(ROOT / "configs" / "deit" / "deit_tiny_patch16_224_fpn.yaml")], ids=["resnet18", "deit_tiny"])
def test_a_dynamic_export_takes_other_batches_and_sizes(tmp_path, capsys, config, fmt):
    """A CNN's FPN and a ViT's simple pyramid: the file takes a batch of two at a size that
    is not a multiple of 32, the traced padding, token grid and crop computed from its input."""
    output = tmp_path / f"dynamic.{fmt}"
    code, out, err = _run(capsys, "--config-file", config, "--format", fmt, "--dynamic", "--output", output, *SMALL)
    assert code == 0, err
    h, w = export.SECOND_SIZE
    assert h % 32 and w % 32
    assert sum(line.startswith(f"2x3x{h}x{w} p") for line in out.splitlines()) == 5
    assert "dynamic N, H, W): equal to eager within 0.0001" in out
    if fmt == "onnx":
        import onnx

        graph = onnx.load(str(output)).graph
        assert [i.name for i in graph.input] == ["image"]
        assert [o.name for o in graph.output] == ["p2", "p3", "p4", "p5", "p6"]


@pytest.mark.parametrize("size", [(9, 13), (30, 41)], ids=["downsample", "upsample"])
def test_antialiased_bicubic_resize_exports_to_onnx(tmp_path, size):
    """timm's position-embedding resize (``interpolate(mode="bicubic", antialias=True)``)
    through the exporter's added symbolic: onnxruntime equals torch, both ways."""
    import onnxruntime

    class Resize(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False)

    x = torch.randn(1, 8, 14, 20, generator=torch.Generator().manual_seed(0))
    export.register_onnx_symbolics()
    torch.onnx.export(Resize(), (x,), str(tmp_path / "r.onnx"), input_names=["x"], opset_version=export.OPSET, dynamo=False)
    (got,) = onnxruntime.InferenceSession(str(tmp_path / "r.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})
    expected = Resize()(x)
    assert got.shape == tuple(expected.shape)
    assert float(abs(torch.from_numpy(got) - expected).max()) < 1e-5


def test_a_size_rounded_up_with_math_ceil_saves_as_integer_division(tmp_path):
    """timm's ``math.ceil(size / step)`` (``get_same_padding``, MobileViT's patch grid) in a
    dynamic program: rewritten, the program saves, loads and pads other sizes as eager does."""
    import math

    class PadToSeven(torch.nn.Module):
        def forward(self, x):
            h, w = x.shape[-2:]
            return torch.nn.functional.pad(x, (0, math.ceil(w / 7) * 7 - w, 0, math.ceil(h / 7) * 7 - h))

    auto = torch.export.Dim.AUTO
    program = torch.export.export(PadToSeven(), (torch.zeros(2, 1, 10, 16),), dynamic_shapes={"x": {2: auto, 3: auto}})
    assert [n.target for n in program.graph.nodes].count(math.ceil) == 2
    assert export.integer_ceil_divisions(program.graph_module) == 2
    assert math.ceil not in [n.target for n in program.graph.nodes]
    torch.export.save(program, tmp_path / "pad.pt2")
    loaded = torch.export.load(tmp_path / "pad.pt2").module()
    for h, w in [(10, 16), (14, 15), (29, 8)]:
        x = torch.randn(2, 1, h, w)
        assert loaded(x).shape == (2, 1, -(-h // 7) * 7, -(-w // 7) * 7)
        assert torch.equal(loaded(x), PadToSeven()(x))


def test_an_export_that_fails_names_the_construct(tmp_path, capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("Exporting the operator 'aten::roll' to ONNX opset version 18 is not supported.\nmore")

    monkeypatch.setattr(export.torch.onnx, "export", refuse)
    code, out, err = _run(capsys, "--config-file", RESNET, "--format", "onnx", "--output", tmp_path / "x.onnx", *SMALL)
    assert code == 1
    assert "onnx export failed: RuntimeError: Exporting the operator 'aten::roll'" in err
    assert "Traceback" not in err + out


def test_a_missing_config_exits_2(capsys):
    assert export.main(["--config-file", "missing.yaml", "--format", "onnx", "--output", "x.onnx"]) == 2
    assert "--config-file 'missing.yaml' is not a file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--config-file", RESNET, "--format", "tflite", "--output", "x"], "invalid choice: 'tflite'"),
        (["--config-file", RESNET, "--format", "onnx"], "required: --output"),
        (["--config-file", RESNET, "--format", "onnx", "--output", "x", "--what", "head"], "invalid choice: 'head'"),
    ],
)
def test_bad_arguments_exit_2(capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        export.main(args)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


# ------------------------------------------------------------------- the whole detector

#: An untrained head scores nothing above the default 0.05: keep every detection, at a
#: test size a CPU exports quickly.
MODEL_OPTS = ["MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0", "INPUT.MIN_SIZE_TEST", "256"]
LAZY_MODEL_OPTS = ["model.roi_heads.box_predictor.test_score_thresh=0.0", "dataloader.test.mapper.augmentations.0.short_edge_length=256"]


def _detections(out: str) -> int:
    (count,) = re.findall(r"\((?:onnx|torchscript), (\d+) detections\)", out)
    return int(count)


def _compared(out: str) -> List[str]:
    return [line.split()[1].rstrip(":") for line in out.splitlines() if line.startswith("3x")]


@pytest.mark.parametrize("fmt", export.MODEL_FORMATS)
def test_the_whole_mask_rcnn_exports_with_eager_boxes_and_scores(tmp_path, capsys, fmt):
    """detectron2's TracingAdapter path on the YAML seed: the config's own test resize of the
    shapes image, the model's own normalisation and padding inside the graph."""
    output = tmp_path / f"mask_rcnn.{fmt}"
    code, out, err = _run(capsys, "--config-file", RESNET, "--what", "model", "--format", fmt, "--output", output, *MODEL_OPTS)
    assert code == 0, err
    assert _compared(out) == ["pred_boxes", "pred_classes", "pred_masks", "scores", "image_size"]
    assert _detections(out) > 0
    assert "equal to eager within 0.0001" in out
    if fmt == "onnx":
        import onnx

        graph = onnx.load(str(output)).graph
        assert [i.name for i in graph.input] == ["image"]
        assert [o.name for o in graph.output] == _compared(out)


def test_a_lazy_config_detector_exports(tmp_path, capsys):
    config = ROOT / "configs" / "convnext" / "convnext_atto_mask_rcnn.py"
    output = tmp_path / "convnext_atto.ts"
    code, out, err = _run(capsys, "--config-file", config, "--what", "model", "--format", "torchscript", "--output", output, *LAZY_MODEL_OPTS)
    assert code == 0, err
    assert _detections(out) > 0 and "pred_boxes" in _compared(out)


def test_a_retinanet_seed_exports(seeded, tmp_path, capsys):
    """A one-stage detector from its `d2timm-gen seed --task retinanet` config: its own eval
    forward, traced (no ROI heads)."""
    config = _seed_file(seeded, "resnet18", "resnet", "retinanet", "yaml")
    opts = ["MODEL.RETINANET.SCORE_THRESH_TEST", "0.0", "INPUT.MIN_SIZE_TEST", "256"]
    code, out, err = _run(capsys, "--config-file", config, "--what", "model", "--format", "torchscript", "--output", tmp_path / "r.ts", *opts)
    assert code == 0, err
    assert {"pred_boxes", "scores", "pred_classes"} <= set(_compared(out)) and _detections(out) > 0


def _instances(count=40, seed=0):
    """One image's flattened Instances as TracingAdapter names them: near-tied scores, as an
    untrained head gives."""
    import numpy as np

    rng = np.random.default_rng(seed)
    corners = rng.uniform(0, 200, size=(count, 2)).astype(np.float32)
    outputs = {
        "pred_boxes": np.concatenate([corners, corners + rng.uniform(4, 50, size=(count, 2)).astype(np.float32)], 1),
        "scores": np.sort(0.05 + rng.uniform(0, 1e-6, size=count).astype(np.float32))[::-1].copy(),
        "pred_classes": rng.integers(0, 3, size=count),
        "pred_masks": rng.uniform(size=(count, 1, 28, 28)).astype(np.float32),
        "image_size": np.array([256, 320]),
    }
    return list(outputs), list(outputs.values())


def test_detections_in_another_order_pair_with_eagers():
    """Near-tied detections ranked differently by the file are paired with eager's whatever
    their order: every per-detection output follows the pairing, image_size is kept."""
    import numpy as np

    names, eager = _instances()
    order = np.random.default_rng(1).permutation(len(eager[0]))
    exported = [a if name == "image_size" else a[order] + (1e-6 if a.dtype.kind == "f" else 0) for name, a in zip(names, eager)]
    matched = export.match_detections(names, exported, eager)
    for name, a, b in zip(names, matched, eager):
        assert a.shape == b.shape and np.allclose(a, b, atol=1e-5), name


def test_a_detection_without_a_counterpart_stays_a_difference():
    """A class the file changed pairs with the nearest box left, so the check reports it."""
    names, eager = _instances()
    exported = [a.copy() for a in eager]
    exported[names.index("pred_classes")][3] = 7  # no eager detection has class 7
    matched = export.match_detections(names, exported, eager)
    classes = names.index("pred_classes")
    assert int((matched[classes] != eager[classes]).sum()) == 1
    assert 7 in matched[classes]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--format", "exported-program"], "--format onnx or torchscript, not 'exported-program'"),
        (["--format", "onnx", "--dynamic"], "--dynamic applies to --what backbone"),
        (["--format", "onnx", "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0"], "Type mismatch"),
        (["--format", "onnx", "--image", "missing.jpg"], "--image 'missing.jpg' is not a file"),
    ],
)
def test_bad_detector_arguments_exit_2(tmp_path, capsys, args, message):
    output = tmp_path / "x"
    code, out, err = _run(capsys, "--config-file", RESNET, "--what", "model", "--output", output, *args)
    assert code == 2 and message in err and "Traceback" not in err
    assert not output.exists()


#: Measured with timm 1.0.31, torch 2.14 and onnxruntime 1.20 on one model per family, random
#: weights, score threshold 0 (strict: a fix shows as XPASS and fails the run).
NO_DETECTIONS = "the untrained inception_v3 Mask R-CNN detects nothing on the test image, eager too"
#: Detections compared as sets (tools/export.match_detections: each eager detection paired
#: with the file's of the same class nearest in box and score, whatever their order).
UNPAIRED = "pred_classes: {} of 100 values differ from eager: detections of the file without a same-class counterpart"
KNOWN_DETECTOR_EXPORT_FAILURES = {
    ("inception_v3", "onnx"): NO_DETECTIONS,
    ("inception_v3", "torchscript"): NO_DETECTIONS,
    ("cspnext_tiny", "onnx"): UNPAIRED.format(1),
    ("nasnetalarge", "onnx"): UNPAIRED.format(9) + " (its backbone's ONNX differs by 4e-2 too)",
    ("convmixer_768_32", "onnx"): "ONNX's paired detections differ from eager by 0.25 relative",
    ("visformer_tiny", "onnx"): "ONNX's paired detections differ from eager by 0.76 relative",
    ("coat_tiny", "onnx"): "ONNX's paired detections differ from eager by 3.2e-3 relative",
    ("csatv2", "onnx"): "ONNX export of adaptive_avg_pool2d: input size not accessible (as its backbone's)",
    ("halonet_h1", "onnx"): "ONNX export of Unfold: input size not accessible (as its backbone's)",
    ("volo_d1_224", "onnx"): "TypeError inside torch's ONNX exporter (as its backbone's)",
}


def _detector_cases():
    for model, family in FAMILY_SAMPLE:
        for fmt in export.MODEL_FORMATS:
            reason = KNOWN_DETECTOR_EXPORT_FAILURES.get((model, fmt))
            marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
            yield pytest.param(model, family, fmt, id=f"{model}-{fmt}", marks=marks)


@pytest.mark.slow
@pytest.mark.parametrize("model, family, fmt", list(_detector_cases()))
def test_the_family_sample_mask_rcnn_exports(tmp_path, capsys, model, family, fmt):
    """One model per family (the sweep's family sample up to its parameter bound): the
    whole Mask R-CNN of each FPN seed through TracingAdapter, detections equal to eager."""
    cls = generated_class(model)
    opts = list(MODEL_OPTS)
    if cls.FIXED_INPUT_SIZE and cls.IMG_SIZE_MULTIPLE:  # built at the test size, as the seed's own rule does
        step = cls.IMG_SIZE_MULTIPLE
        opts += ["MODEL.BACKBONE.CONFIG.IMG_SIZE", str(step * -(-256 // step))]
    config = ROOT / "configs" / family / f"{model}_fpn.yaml"
    code, out, err = _run(capsys, "--config-file", config, "--what", "model", "--format", fmt, "--output", tmp_path / "m", *opts)
    assert code == 0, err
    assert _detections(out) > 0
