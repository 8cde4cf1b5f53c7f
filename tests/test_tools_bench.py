"""Smoke tests of the benchmark scripts: they run with minimal settings, print their table
(figures, targets, machine) and write numeric JSON. No assertion depends on a timing."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import types
from pathlib import Path

import pytest

from tests.helpers import ROOT, subprocess_env

SCRIPTS = ("bench_import.py", "bench_forward.py", "benchmark_train.py", "bench_generate.py", "bench_padding.py")


def load_json(path: Path) -> dict:
    payload = json.loads(path.read_text())
    assert payload["figures"], payload
    for figure in payload["figures"]:
        assert isinstance(figure["value"], (int, float)) and math.isfinite(figure["value"]), figure
        assert figure["samples"] and all(isinstance(s, (int, float)) for s in figure["samples"]), figure
        assert figure["n"] == len(figure["samples"])
        assert figure["passed"] in (True, False, None)
    machine = payload["machine"]
    for key in ("cpu_model", "logical_cpus", "torch", "timm", "detectron2"):
        assert machine[key], key
    return payload


def figure(payload: dict, prefix: str) -> dict:
    found = [f for f in payload["figures"] if f["name"].startswith(prefix)]
    assert len(found) == 1, (prefix, [f["name"] for f in payload["figures"]])
    return found[0]


def assert_table(text: str, *names: str) -> None:
    assert "machine:" in text and "torch " in text and "timm " in text and "detectron2 " in text, text
    header = next(line for line in text.splitlines() if line.startswith("figure"))
    for column in ("median", "n", "target", "result"):
        assert column in header.split(), header
    for name in names:
        assert name in text, (name, text)


# ----------------------------------------------------------------------------- scripts


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_help(script):
    """Each script runs from the command line; --help imports neither torch nor detectron2."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "dev" / script), "--help"],
        cwd=str(ROOT), env=subprocess_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "--json" in result.stdout
    assert "--repeat" in result.stdout or "--rounds" in result.stdout or script == "bench_padding.py"


# ----------------------------------------------------------------------------- bench_common


def test_common_table_and_json(tmp_path, capsys):
    from tools.dev import bench_common as bc

    figures = [
        bc.Figure("alpha", [3.0, 1.0, 2.0], target="< 2.5 s", passed=bc.below(2.0, 2.5)),
        bc.Figure("beta ratio", [1.1, 1.2], unit="x", target="<= 1.05", passed=bc.at_most(1.15, 1.05)),
        bc.Figure("gamma", [5.0], value=7.0, unit="ms", note="given value"),
    ]
    assert figures[0].value == 2.0 and figures[1].value == pytest.approx(1.15) and figures[2].value == 7.0
    payload = bc.report("demo", figures, bc.machine_info(), settings={"k": 1}, json_path=tmp_path / "r.json")
    out = capsys.readouterr().out
    assert_table(out, "alpha", "beta ratio", "gamma", "given value")
    assert "PASS" in out and "FAIL" in out and "overall: FAIL (1 of 2 targets missed)" in out
    assert payload["passed"] is False
    assert load_json(tmp_path / "r.json")["settings"] == {"k": 1}
    assert not bc.below(float("nan"), 1.0) and not bc.at_most(float("nan"), 1.0)


# ----------------------------------------------------------------------------- bench_import


def _fake_probe(mode, model, python=sys.executable):
    extra = {"baseline": 0.0, "lazy": 0.01, "eager": 0.25}[mode]
    result = {"mode": mode, "baseline_s": 2.0, "extra_s": extra, "wall_s": 3.0 + extra}
    if mode != "baseline":
        result.update({"class": "Resnet50Backbone", "models": 296, "registered": 2 if mode == "lazy" else 592,
                       "model_modules": 1 if mode == "lazy" else 296})  # fmt: skip
    return result


def test_bench_import_table(tmp_path, capsys, monkeypatch):
    from tools.dev import bench_import

    monkeypatch.setattr(bench_import, "run_probe", _fake_probe)
    assert bench_import.main(["--repeat", "2", "--warmup", "0", "--json", str(tmp_path / "i.json")]) == 0
    out = capsys.readouterr().out
    assert_table(
        out, "baseline: import detectron2.modeling, timm", "lazy: + import generated", "eager:", "eager / lazy"
    )
    payload = load_json(tmp_path / "i.json")
    lazy = figure(payload, "lazy: + import generated")
    assert lazy["target"] == "< 0.2 s" and lazy["passed"] is True and lazy["value"] == pytest.approx(0.01)
    assert figure(payload, "eager / lazy")["value"] == pytest.approx(25.0)
    assert figure(payload, "lazy: process wall time")["value"] == pytest.approx(0.01)


def test_import_probe_lazy_imports_one_model_module():
    """The real probe: a fresh process resolves one builder and imports one model module."""
    from tools.dev import bench_import

    result = bench_import.run_probe("lazy", "resnet18")
    assert result["class"] == "Resnet18Backbone"
    assert result["model_modules"] == 1 and result["registered"] == 2
    assert result["extra_s"] >= 0 and result["baseline_s"] > 0 and result["wall_s"] > 0


@pytest.mark.slow
def test_bench_import_runs(tmp_path, capsys):
    from tools.dev import bench_import

    assert bench_import.main(["--model", "resnet18", "--repeat", "1", "--warmup", "0",
                              "--json", str(tmp_path / "i.json")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert_table(out, "lazy: + import generated, resolve build_resnet18_fpn_backbone", "eager / lazy")
    payload = load_json(tmp_path / "i.json")
    assert figure(payload, "eager: + import generated and all")["n"] == 1


# ----------------------------------------------------------------------------- bench_forward


@pytest.fixture
def keep_torch_threads():
    """bench_forward sets torch's thread count for the whole process: put it back."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_bench_forward_runs(tmp_path, capsys, keep_torch_threads):
    from tools.dev import bench_forward

    argv = ["--model", "resnet18", "swin_tiny_patch4_window7_224", "--fpn-model", "resnet18", "--size", "64x96",
            "--repeat", "1", "--warmup", "0", "--json", str(tmp_path / "f.json")]  # fmt: skip
    assert bench_forward.main(argv) == 0
    out = capsys.readouterr().out
    assert_table(out, "(a1) time ratio generated / timm", "(a2) time ratio generated / timm",
                 "(b) time ratio generated / detectron2", "detectron2 R18-FPN")  # fmt: skip
    assert out.count("outputs identical: yes") == 2  # same weights, same arithmetic
    assert "the same shapes" in out
    payload = load_json(tmp_path / "f.json")
    assert figure(payload, "(a2) time ratio")["target"].startswith("<= 1.01")
    assert figure(payload, "(b) time ratio")["target"].startswith("<= 1.05")
    assert payload["settings"]["threads"] == 1


def test_bench_forward_rejects_bad_size():
    from tools.dev import bench_forward

    with pytest.raises(SystemExit):
        bench_forward.main(["--size", "64"])


# ----------------------------------------------------------------------------- bench_padding


def test_bench_padding_counts_the_pixels_of_a_window_and_a_fixed_model(tmp_path, capsys, monkeypatch):
    """Worked by hand: a 480x640 COCO image at 800/1333 is 800x1067. Padded to 32 it is
    800x1088; to 256 (a window model) 1024x1280, 50.6 % more. A fixed model built at
    1024 resizes it to 768x1024 and pads to 1024x1024: against 768x1024, 33.3 % more."""
    from tools.dev import bench_padding

    manifest = {"models": {
        "win": {"facts": {"fixed_input_size": False}, "fpn_size_divisibility": 256, "test_size": [800, 1333]},
        "fix": {"facts": {"fixed_input_size": True}, "fpn_size_divisibility": 1024, "test_size": [1024, 1024]},
        "cnn": {"facts": {"fixed_input_size": False}, "fpn_size_divisibility": 32, "test_size": [800, 1333]},
    }}  # fmt: skip
    path = tmp_path / "MANIFEST.json"
    path.write_text(json.dumps(manifest))
    monkeypatch.setattr(bench_padding, "COCO_SHAPES", ((480, 640),))
    assert bench_padding.main(["--manifest", str(path), "--json", str(tmp_path / "p.json")]) == 0
    payload = load_json(tmp_path / "p.json")
    assert figure(payload, "window models, multiples of 256")["value"] == pytest.approx(100 * (1024 * 1280 / (800 * 1088) - 1))
    assert figure(payload, "fixed size, padded to 1024x1024")["value"] == pytest.approx(100 / 3)
    assert figure(payload, "any size")["value"] == 0
    assert_table(capsys.readouterr().out, "window models, multiples of 256")


# ----------------------------------------------------------------------------- benchmark_train


class _FakeRunner:
    """Stands in for benchmark_train.Runner: steps take fixed fake times."""

    def __init__(self, label, config_file, opts, shapes_root=None):
        self.label = label
        resnets = types.SimpleNamespace(NORM="BN", STRIDE_IN_1X1=True)
        self.cfg = types.SimpleNamespace(MODEL=types.SimpleNamespace(RESNETS=resnets))
        self.seconds = 1.0 if label.startswith("detectron2") else 1.2
        self.times, self.rounds, self.parameters = [], [], 1_000_000

    def step(self, record):
        if record:
            self.times.append(self.seconds)
            self.rounds[-1].append(self.seconds)


def test_benchmark_train_table(tmp_path, capsys, monkeypatch):
    from tools.dev import benchmark_train

    monkeypatch.setattr(benchmark_train, "Runner", _FakeRunner)
    monkeypatch.setattr(benchmark_train, "reference_config_file", lambda: "reference.yaml")
    argv = ["--iterations", "4", "--rounds", "2", "--warmup", "1", "--json", str(tmp_path / "t.json")]
    assert benchmark_train.main(argv) == 0
    out = capsys.readouterr().out
    assert_table(out, "train step", "time ratio generated / detectron2", "speed ratio generated / detectron2: 0.83")
    payload = load_json(tmp_path / "t.json")
    ratio = figure(payload, "time ratio")
    assert ratio["value"] == pytest.approx(1.2) and ratio["n"] == 2 and ratio["passed"] is False
    assert payload["settings"]["iterations"] == 4


@pytest.mark.slow
def test_benchmark_train_runs(tmp_path, capsys):
    from tools.dev import benchmark_train

    argv = ["--dataset", "shapes_tiny", "--image-size", "64", "--batch", "1", "--iterations", "1", "--rounds", "1",
            "--warmup", "0", "--candidate", str(ROOT / "configs" / "resnet" / "resnet18_fpn.yaml"),
            "--shapes-root", str(tmp_path / "shapes"), "--json", str(tmp_path / "t.json")]  # fmt: skip
    assert benchmark_train.main(argv) == 0
    assert_table(capsys.readouterr().out, "detectron2 R50-FPN (BN) train step", "generated resnet18_fpn train step")
    assert figure(load_json(tmp_path / "t.json"), "time ratio")["n"] == 1
