"""tools/shapes_dataset.py: a deterministic, valid COCO instance-segmentation dataset."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from tools import shapes_dataset as sd

SMALL = sd.ShapesSpec(image_size=64, num_train=6, num_val=3, min_objects=2, max_objects=4, min_scale=0.2, max_scale=0.45)


def _digests(directory: Path) -> dict:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_identical_files(tmp_path):
    first = sd.generate("small", SMALL, root=tmp_path / "a")
    second = sd.generate("small", SMALL, root=tmp_path / "b")
    assert first.name == second.name
    digests = _digests(first)
    assert digests == _digests(second)
    assert len([p for p in digests if p.endswith(".png")]) == SMALL.num_train + SMALL.num_val
    other = sd.generate("small", dataclasses.replace(SMALL, seed=1), root=tmp_path / "a")
    assert other != first
    assert _digests(other)["annotations/instances_train.json"] != digests["annotations/instances_train.json"]


def test_an_image_does_not_depend_on_how_many_are_drawn():
    bigger = dataclasses.replace(SMALL, num_train=50)
    image, instances = sd.draw_image(SMALL, "train", 2)
    again, instances_again = sd.draw_image(bigger, "train", 2)
    assert np.array_equal(image, again)
    assert [i["polygon"] for i in instances] == [i["polygon"] for i in instances_again]


def test_coco_json_is_valid(tmp_path):
    from pycocotools import mask as mask_util
    from pycocotools.coco import COCO

    directory = sd.generate("small", SMALL, root=tmp_path)
    for split in sd.SPLITS:
        path = directory / "annotations" / f"instances_{split}.json"
        coco = COCO(str(path))
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(sd.CLASSES)
        assert len(coco.getImgIds()) == SMALL.num_images(split)
        per_image = [len(coco.getAnnIds(imgIds=[i])) for i in coco.getImgIds()]
        assert min(per_image) >= 1 and max(per_image) <= SMALL.max_objects
        for image_id in coco.getImgIds():
            info = coco.loadImgs([image_id])[0]
            assert (directory / split / info["file_name"]).is_file()
            union = np.zeros((info["height"], info["width"]), dtype=np.int32)
            for ann in coco.loadAnns(coco.getAnnIds(imgIds=[image_id])):
                assert ann["iscrowd"] == 0 and ann["category_id"] in (1, 2, 3)
                (polygon,) = ann["segmentation"]
                assert len(polygon) >= 6 and len(polygon) % 2 == 0
                x, y, w, h = ann["bbox"]
                assert 0 <= x and 0 <= y and x + w <= info["width"] and y + h <= info["height"] and w > 0 and h > 0
                xs, ys = polygon[0::2], polygon[1::2]
                assert min(xs) == pytest.approx(x, abs=0.01) and max(xs) == pytest.approx(x + w, abs=0.01)
                assert min(ys) == pytest.approx(y, abs=0.01) and max(ys) == pytest.approx(y + h, abs=0.01)
                mask = coco.annToMask(ann)
                assert abs(int(mask.sum()) - ann["area"]) <= 0.15 * ann["area"] + 4
                union += mask
                rle = mask_util.frPyObjects([polygon], info["height"], info["width"])
                assert mask_util.area(mask_util.merge(rle)) > 0
            # Visible masks of overlapping shapes do not overlap (beyond outline rounding).
            assert (union > 1).sum() <= 0.05 * (union > 0).sum() + 8


def test_visible_masks_are_disjoint_and_mostly_visible():
    for index in range(8):
        _, instances = sd.draw_image(SMALL, "val", index)
        masks = np.stack([i["mask"] for i in instances])
        assert masks.sum(axis=0).max() <= 1
        for inst in instances:
            assert len(sd._contours(inst["mask"])) == 1  # one piece, no holes


def test_cached_dataset_is_reused_and_a_damaged_one_regenerated(tmp_path):
    directory = sd.generate("small", SMALL, root=tmp_path)
    marker = directory / sd.MARKER
    stamp = marker.stat().st_mtime_ns
    assert sd.generate("small", SMALL, root=tmp_path) == directory
    assert marker.stat().st_mtime_ns == stamp
    (directory / "val" / "000001.png").unlink()
    assert not sd.is_complete(directory, SMALL)
    sd.generate("small", SMALL, root=tmp_path)
    assert (directory / "val" / "000001.png").is_file() and sd.is_complete(directory, SMALL)
    annotations = directory / "annotations" / "instances_train.json"
    annotations.write_text(annotations.read_text().replace('"iscrowd":0', '"iscrowd":1', 1))
    assert not sd.is_complete(directory, SMALL)
    sd.generate("small", SMALL, root=tmp_path)
    assert sd.is_complete(directory, SMALL)
    assert [p.name for p in tmp_path.iterdir()] == [directory.name]  # no temporary leftovers


def test_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(sd.ROOT_ENV_VAR, str(tmp_path / "env-root"))
    assert sd.dataset_dir("shapes", SMALL).parent == tmp_path / "env-root"


def test_registered_with_detectron2(tmp_path):
    from detectron2.data import DatasetCatalog, MetadataCatalog

    name = "shapes_tiny"
    names = sd.register(name, root=tmp_path)
    assert names == {"train": "shapes_tiny_train", "val": "shapes_tiny_val"}
    records = DatasetCatalog.get("shapes_tiny_val")
    assert len(records) == sd.PRESETS[name].num_val
    assert all(r["annotations"] and Path(r["file_name"]).is_file() for r in records)
    metadata = MetadataCatalog.get("shapes_tiny_train")
    assert metadata.thing_classes == list(sd.CLASSES) and metadata.evaluator_type == "coco"
    assert metadata.json_file.startswith(str(tmp_path))
    # Registering again is a no-op; from another root it points at the new files.
    sd.register(name, root=tmp_path)
    sd.register(name, root=tmp_path / "other")
    assert MetadataCatalog.get("shapes_tiny_train").json_file.startswith(str(tmp_path / "other"))
    assert sd.preset_of("shapes_val") == "shapes" and sd.preset_of("coco_2017_val") is None
    assert sd.register_for_datasets(["coco_2017_train", "shapes_tiny_val"], root=tmp_path) == ["shapes_tiny"]


def test_command_line(tmp_path, capsys):
    assert sd.main(["--preset", "shapes_tiny", "--root", str(tmp_path), "--seed", "3"]) == 0
    printed = Path(capsys.readouterr().out.strip())
    marker = json.loads((printed / sd.MARKER).read_text())
    assert marker["spec"]["seed"] == 3 and marker["generator_version"] == sd.GENERATOR_VERSION
