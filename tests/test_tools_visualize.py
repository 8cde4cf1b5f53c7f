"""tools/visualize.py (predictions drawn with detectron2's Visualizer) and
tools/plot_metrics.py (the loss plot)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tools import plot_metrics, recipes, shapes_dataset, train_net, visualize

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "resnet" / "test_resnet_fpn.yaml"


def test_visualize_writes_pngs_and_a_grid(tmp_path, capsys):
    pytest.importorskip("cv2", reason="detectron2's Visualizer needs opencv-python-headless")
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model
    from PIL import Image

    # Any checkpoint will do: an untrained tiny model with score threshold 0 still
    # predicts boxes and masks to draw.
    args = train_net.argument_parser().parse_args(["--config-file", str(CONFIG), *recipes.tiny_opts()])
    cfg = train_net.build_config(args)
    train_net.ensure_backbone(cfg)
    DetectionCheckpointer(build_model(cfg), save_dir=str(tmp_path)).save("untrained")
    (tmp_path / "config.yaml").write_text(cfg.dump())
    images = shapes_dataset.generate("shapes_tiny", root=tmp_path / "shapes") / "val"

    out = tmp_path / "vis"
    grid = tmp_path / "grid.png"
    code = visualize.main(
        ["--config-file", str(tmp_path / "config.yaml"), "--weights", str(tmp_path / "untrained.pth"),
         "--input", str(images), "--output", str(out), "--limit", "3", "--threshold", "0", "--scale", "2",
         "--grid", str(grid), "--columns", "3", "--shapes-root", str(tmp_path / "shapes")]
    )  # fmt: skip
    assert code == 0
    drawn = sorted(out.glob("*.png"))
    assert [p.name for p in drawn] == ["000000.png", "000001.png", "000002.png"]
    for path in drawn:
        picture = np.asarray(Image.open(path))
        assert picture.shape == (128, 128, 3)  # 64px images drawn at scale 2
    original = np.asarray(Image.open(images / "000000.png").resize((128, 128)))
    assert not np.array_equal(np.asarray(Image.open(drawn[0])), original)  # something was drawn
    records = json.loads((out / "predictions.json").read_text())
    assert len(records) == 3 and any(r["detections"] for r in records)
    detection = next(d for r in records for d in r["detections"])
    assert detection["category"] in shapes_dataset.CLASSES and len(detection["bbox"]) == 4
    assert Image.open(grid).size == (3 * 128 + 4 * 4, 128 + 2 * 4)
    assert "3 images" in capsys.readouterr().out


def test_visualize_rejects_an_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = visualize.main(["--weights", "w.pth", "--input", str(tmp_path / "empty"), "--output", str(tmp_path / "o")])
    assert code == 2 and "no images" in capsys.readouterr().err


def test_make_grid_tiles_row_by_row():
    tiles = [np.full((10, 20, 3), i, dtype=np.uint8) for i in range(5)]
    grid = visualize.make_grid(tiles, columns=2, pad=1)
    assert grid.shape == (3 * 11 + 1, 2 * 21 + 1, 3)
    assert (grid[1:11, 22:42] == 1).all() and (grid[23:33, 1:21] == 4).all()
    assert (grid[23:33, 22:42] == 255).all()  # the empty sixth cell


def test_plot_losses_from_metrics_json(tmp_path):
    from PIL import Image

    metrics = tmp_path / "metrics.json"
    lines = [
        dict(iteration=i, total_loss=3.0 / (i + 1), loss_cls=1.0 / (i + 1), loss_mask=0.7, lr=0.01, time=1.0)
        for i in range(19, 200, 20)
    ]
    lines.append({"bbox/AP": 40.0, "iteration": 199})
    metrics.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    series = plot_metrics.loss_series(plot_metrics.read_metrics(metrics))
    assert set(series) == {"total_loss", "loss_cls", "loss_mask", "lr"}
    assert series["total_loss"][0][:2] == [20, 40]
    assert plot_metrics.main([str(metrics)]) == 0
    image = Image.open(tmp_path / "losses.png")
    assert image.format == "PNG" and image.size[0] > 400


def test_plot_losses_needs_losses(tmp_path, capsys):
    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"bbox/AP": 1.0, "iteration": 0}\n')
    assert plot_metrics.main([str(metrics), "-o", str(tmp_path / "x.png")]) == 2
    assert "no loss values" in capsys.readouterr().err
