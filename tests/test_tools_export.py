"""tools/export.py: a generated backbone with its FPN exports to ONNX, TorchScript and a
torch.export program; the file, loaded back, equals eager on the export size and (dynamic
exports) on a batch of two at a size that is not a multiple of 32; failures exit 1 naming
the construct, bad arguments exit 2."""

from __future__ import annotations

import pytest

pytest.importorskip("onnxruntime", reason="onnxruntime is pinned in requirements/test.txt: `make install`")

from tests.helpers import ROOT  # noqa: E402
from tools import export  # noqa: E402

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


def test_a_dynamic_onnx_export_takes_other_batches_and_sizes(tmp_path, capsys):
    output = tmp_path / "resnet18.onnx"
    code, out, err = _run(capsys, "--config-file", RESNET, "--format", "onnx", "--dynamic", "--output", output, *SMALL)
    assert code == 0, err
    h, w = export.SECOND_SIZE
    assert h % 32 and w % 32
    assert sum(line.startswith(f"2x3x{h}x{w} p") for line in out.splitlines()) == 5

    import onnx

    graph = onnx.load(str(output)).graph
    assert [i.name for i in graph.input] == ["image"]
    assert [o.name for o in graph.output] == ["p2", "p3", "p4", "p5", "p6"]


def test_an_export_that_fails_names_the_construct(tmp_path, capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("Exporting the operator 'aten::roll' to ONNX opset version 17 is not supported.\nmore")

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
