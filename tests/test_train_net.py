"""tools/train_net.py end to end on the CPU: train, evaluate, reload, resume, two processes.

The first training run is a subprocess, as a user runs it: ``python tools/train_net.py``
from a directory other than the repository (the script must make ``generated``
importable itself, and must import only the one model module it needs). Later runs go
through ``train_net.invoke_main`` in this process, which saves a torch start-up each.
The model is timm's tiny ``test_resnet`` with an FPN and tiny heads on the 64px
``shapes_tiny`` dataset (tools/recipes.py: tiny_opts).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tools import recipes, train_net

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "train_net.py"
CONFIG = ROOT / "configs" / "resnet" / "test_resnet_fpn.yaml"
LAZY_CONFIG = ROOT / "configs" / "resnet" / "test_resnet_mask_rcnn.py"


def _subprocess(args, cwd: Path, timeout: int = 600) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        pytest.fail(f"train_net.py {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stdout[-6000:]}")
    return proc.stdout


def _metrics(output: Path):
    return [json.loads(line) for line in (output / "metrics.json").read_text().splitlines() if line.strip()]


def _results(path: Path) -> dict:
    return json.loads(path.read_text())["results"]


def test_train_then_eval_only_reproduces_the_ap_then_resume(tmp_path, capfd):
    out = tmp_path / "out"
    shapes = ["--shapes-root", str(tmp_path / "shapes")]
    log = _subprocess(["--config-file", CONFIG, *shapes, *recipes.tiny_opts(max_iter=4, output_dir=out)], cwd=tmp_path)
    # Lazy: exactly the one model module (and its family package) was imported.
    assert (
        "backbone build_test_resnet_fpn_backbone from generated "
        "(imported generated.resnet, generated.resnet.test_resnet)" in log
    )
    for name in ("model_final.pth", "config.yaml", "metrics.json", "last_checkpoint", train_net.RESULTS_TRAIN):
        assert (out / name).is_file(), name
    trained = _results(out / train_net.RESULTS_TRAIN)
    assert set(trained) == {"bbox", "segm"}
    assert any(v is not None for v in trained["bbox"].values()), trained  # it predicted something
    assert json.loads((out / train_net.RESULTS_TRAIN).read_text())["iterations"] == 4

    # The saved config plus the final weights reproduce the evaluation at the end of training.
    weights = str(out / "model_final.pth")
    train_net.invoke_main(["--config-file", str(out / "config.yaml"), *shapes, "--eval-only", "MODEL.WEIGHTS", weights])
    assert _results(out / train_net.RESULTS_EVAL) == trained
    assert json.loads((out / train_net.RESULTS_EVAL).read_text())["weights"] == weights

    # --resume continues from the last checkpoint (4 iterations done) up to the new MAX_ITER.
    capfd.readouterr()
    train_net.invoke_main(["--config-file", str(out / "config.yaml"), *shapes, "--resume", "SOLVER.MAX_ITER", "6"])
    assert "Starting training from iteration 4" in capfd.readouterr().out
    assert [m["iteration"] for m in _metrics(out) if "total_loss" in m][-1] == 5
    assert json.loads((out / train_net.RESULTS_TRAIN).read_text())["iterations"] == 6


def test_a_lazy_config_trains_evaluates_and_resumes(tmp_path, capfd):
    """The LazyConfig seed, with key=value overrides (tools/recipes.py: lazy_tiny_opts): a
    run from another directory, then --eval-only from the config.yaml it saved, then
    --resume up to a later train.max_iter."""
    out = tmp_path / "out"
    shapes = ["--shapes-root", str(tmp_path / "shapes")]
    _subprocess(["--config-file", LAZY_CONFIG, *shapes, *recipes.lazy_tiny_opts(max_iter=4, output_dir=out)], cwd=tmp_path)
    for name in ("model_final.pth", "config.yaml", "metrics.json", "last_checkpoint", train_net.RESULTS_TRAIN):
        assert (out / name).is_file(), name
    assert not (out / "config.yaml.pkl").exists(), "the saved config is YAML that loads back"
    trained = _results(out / train_net.RESULTS_TRAIN)
    assert set(trained) == {"bbox", "segm"} and any(v is not None for v in trained["bbox"].values())
    assert json.loads((out / train_net.RESULTS_TRAIN).read_text())["iterations"] == 4
    assert train_net.is_lazy_config(out / "config.yaml") and not train_net.is_lazy_config(CONFIG)

    weights = str(out / "model_final.pth")
    train_net.invoke_main(["--config-file", str(out / "config.yaml"), *shapes, "--eval-only",
                           f"train.init_checkpoint={weights}"])  # fmt: skip
    assert _results(out / train_net.RESULTS_EVAL) == trained

    capfd.readouterr()
    train_net.invoke_main(["--config-file", str(out / "config.yaml"), *shapes, "--resume", "train.max_iter=6"])
    assert "Starting training from iteration 4" in capfd.readouterr().out
    assert [m["iteration"] for m in _metrics(out) if "total_loss" in m][-1] == 5
    assert json.loads((out / train_net.RESULTS_TRAIN).read_text())["iterations"] == 6


def test_a_lazy_config_trains_in_two_cpu_processes(tmp_path):
    """detectron2's launcher path with gloo; the seed's SyncBN FPN needs a GPU once several
    processes train, so the CPU run names BN (as the README says)."""
    out = tmp_path / "out"
    args = train_net.argument_parser().parse_args(
        [
            "--num-gpus", "2", "--dist-url", "auto", "--config-file", str(LAZY_CONFIG),
            "--shapes-root", str(tmp_path / "shapes"),
            *recipes.lazy_tiny_opts(max_iter=2, ims_per_batch=2, output_dir=out), "model.backbone.norm=BN",
        ]
    )  # fmt: skip
    train_net.launch(train_net.main, args)
    assert "Rank of current process: 1. World size: 2" in (out / "log.txt.rank1").read_text()
    assert (out / "model_final.pth").is_file()
    assert [m["iteration"] for m in _metrics(out) if "total_loss" in m][-1] == 1


def test_two_cpu_processes_over_gloo(tmp_path):
    out = tmp_path / "out"
    args = train_net.argument_parser().parse_args(
        [
            "--num-gpus", "2", "--dist-url", "auto", "--config-file", str(CONFIG),
            "--shapes-root", str(tmp_path / "shapes"),
            *recipes.tiny_opts(max_iter=2, ims_per_batch=2, output_dir=out),
        ]
    )  # fmt: skip
    train_net.launch(train_net.main, args)  # spawns two processes joined by gloo
    log = (out / "log.txt").read_text()
    assert "Rank of current process: 0. World size: 2" in log
    assert "Rank of current process: 1. World size: 2" in (out / "log.txt.rank1").read_text()
    assert (out / "model_final.pth").is_file()
    assert set(_results(out / train_net.RESULTS_TRAIN)) == {"bbox", "segm"}
    assert [m["iteration"] for m in _metrics(out) if "total_loss" in m][-1] == 1


def test_unknown_backbone_names_close_matches():
    args = train_net.argument_parser().parse_args(["MODEL.BACKBONE.NAME", "build_resnet181_fpn_backbone"])
    with pytest.raises(KeyError, match="build_resnet18_fpn_backbone"):
        train_net.ensure_backbone(train_net.build_config(args))


def test_detectron2_backbones_need_no_generated_module():
    args = train_net.argument_parser().parse_args(["MODEL.BACKBONE.NAME", "build_resnet_fpn_backbone"])
    assert train_net.ensure_backbone(train_net.build_config(args)) == "registry"


def test_cpu_runs_use_the_gloo_launcher(monkeypatch):
    calls = []
    monkeypatch.setattr(train_net, "launch_cpu", lambda *a, **k: calls.append(("cpu", a, k)))
    monkeypatch.setattr(train_net, "d2_launch", lambda *a, **k: calls.append(("d2", a, k)))
    args = train_net.argument_parser().parse_args(
        ["--num-gpus", "2", "--num-machines", "2", "--machine-rank", "1", "--dist-url", "tcp://10.0.0.1:1234",
         "MODEL.DEVICE", "cpu"]
    )  # fmt: skip
    train_net.launch(train_net.main, args)
    ((kind, positional, keywords),) = calls
    assert kind == "cpu" and positional[1] == 2
    assert keywords == dict(num_machines=2, machine_rank=1, dist_url="tcp://10.0.0.1:1234", args=(args,))


def test_auto_dist_url_is_for_one_machine_only():
    with pytest.raises(ValueError, match="one machine"):
        train_net.launch_cpu(print, 2, num_machines=2, dist_url="auto")


def test_the_recipe_seed_trains_through_train_net(tmp_path):
    """The ViTDet-recipe seed (`d2timm-gen seed test_resnet --task mask_rcnn_vitdet`, beside
    the Mask R-CNN seed it imports) trains and evaluates: AdamW with the backbone's lr decay
    and drop path reach the saved config."""
    import shutil

    from generator.render import render_task_seed
    from generator.spec import ModelFacts, make_spec
    from tests.helpers import manifest_of

    spec = make_spec(ModelFacts.from_dict(manifest_of(ROOT / "generated")["models"]["test_resnet"]["facts"]))
    ((path, text),) = render_task_seed(spec, "mask_rcnn_vitdet", "py", "generated").items()
    seed = tmp_path / "configs" / path
    seed.parent.mkdir(parents=True)
    seed.write_text(text)
    shutil.copy(LAZY_CONFIG, seed.parent / LAZY_CONFIG.name)
    out = tmp_path / "out"
    train_net.invoke_main(["--config-file", str(seed), "--shapes-root", str(tmp_path / "shapes"),
                           *recipes.lazy_tiny_opts(max_iter=2, output_dir=out),
                           "model.backbone.bottom_up.pretrained=False"])  # fmt: skip
    saved = (out / "config.yaml").read_text()
    assert "_target_: torch.optim.AdamW" in saved and "lr_decay: 0.7" in saved and "drop_path_rate: 0.1" in saved
    assert json.loads((out / train_net.RESULTS_TRAIN).read_text())["iterations"] == 2
