#!/usr/bin/env python
"""Draw a trained model's predictions on a folder of images (detectron2's Visualizer).

    python tools/visualize.py --config-file out/r18/config.yaml --weights out/r18/model_final.pth \\
        --input .cache/shapes/shapes-<hash>/val --output out/r18/vis [--grid out/r18/grid.png]

For every image in ``--input`` (PNG, JPEG, BMP, WebP; sorted, at most ``--limit``) it
writes ``<output>/<stem>.png`` with the predicted boxes, masks, classes and scores
drawn, and ``<output>/predictions.json`` with the detections (class, score, box
``[x0, y0, x1, y1]``). ``--grid FILE`` also puts the drawn images into one PNG.
Class names come from the metadata of the first dataset in ``DATASETS.TEST`` (the
shapes datasets are registered on demand). Config overrides go at the end, as with
train_net.py. Evaluation against annotations is ``tools/train_net.py --eval-only``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import List, Optional, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

__all__ = ["IMAGE_SUFFIXES", "list_images", "make_grid", "main", "visualize"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def list_images(directory: Path, limit: Optional[int] = None) -> List[Path]:
    files = sorted(p for p in Path(directory).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    return files[:limit] if limit else files


def make_grid(images: Sequence[np.ndarray], columns: Optional[int] = None, pad: int = 4) -> np.ndarray:
    """Tile HxWx3 uint8 images (any sizes) row by row on a white canvas."""
    if not images:
        raise ValueError("no images to put in a grid")
    columns = columns or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / columns)
    cell_h = max(im.shape[0] for im in images)
    cell_w = max(im.shape[1] for im in images)
    grid = np.full((rows * (cell_h + pad) + pad, columns * (cell_w + pad) + pad, 3), 255, dtype=np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        y, x = pad + r * (cell_h + pad), pad + c * (cell_w + pad)
        grid[y : y + image.shape[0], x : x + image.shape[1]] = image[..., :3]
    return grid


def _require_cv2() -> None:
    try:
        import cv2  # noqa: F401
    except ImportError as exc:  # detectron2.utils.visualizer imports cv2 at module level
        raise SystemExit(
            "error: detectron2's Visualizer needs OpenCV: pip install opencv-python-headless"
        ) from exc


def visualize(
    cfg,
    images: Sequence[Path],
    output: Path,
    threshold: float = 0.5,
    scale: float = 1.0,
    dataset: Optional[str] = None,
) -> List[dict]:
    """Predict, draw and write each image; returns one record per image."""
    _require_cv2()
    from detectron2.data import MetadataCatalog
    from detectron2.data.detection_utils import read_image
    from detectron2.engine import DefaultPredictor
    from detectron2.utils.visualizer import ColorMode, Visualizer

    cfg = cfg.clone()
    cfg.defrost()
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = threshold
    cfg.freeze()
    predictor = DefaultPredictor(cfg)
    dataset = dataset or (cfg.DATASETS.TEST[0] if len(cfg.DATASETS.TEST) else None)
    metadata = MetadataCatalog.get(dataset) if dataset else MetadataCatalog.get("__unused")
    names = list(getattr(metadata, "thing_classes", []) or [])
    output.mkdir(parents=True, exist_ok=True)
    records = []
    for path in images:
        bgr = read_image(str(path), format="BGR")  # DefaultPredictor takes BGR
        instances = predictor(bgr)["instances"].to("cpu")
        drawn = Visualizer(bgr[:, :, ::-1], metadata, scale=scale, instance_mode=ColorMode.IMAGE)
        picture = drawn.draw_instance_predictions(instances).get_image()
        target = output / f"{path.stem}.png"
        from PIL import Image

        Image.fromarray(picture).save(target)
        detections = []
        for box, score, cls in zip(
            instances.pred_boxes.tensor.tolist(), instances.scores.tolist(), instances.pred_classes.tolist()
        ):
            detections.append(
                dict(
                    category=names[cls] if cls < len(names) else str(cls),
                    category_id=int(cls),
                    score=round(float(score), 4),
                    bbox=[round(float(v), 1) for v in box],
                )
            )
        records.append(dict(image=str(path), output=str(target), detections=detections))
    (output / "predictions.json").write_text(json.dumps(records, indent=1) + "\n")
    return records


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config-file", default="", metavar="FILE", help="the model's config (OUTPUT_DIR/config.yaml)")
    parser.add_argument("--weights", required=True, help="checkpoint (MODEL.WEIGHTS), e.g. OUTPUT_DIR/model_final.pth")
    parser.add_argument("--input", required=True, type=Path, help="folder of images")
    parser.add_argument("--output", required=True, type=Path, help="folder for the drawn PNGs")
    parser.add_argument("--threshold", type=float, default=0.5, help="minimum score drawn (default %(default)s)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many images (sorted by name)")
    parser.add_argument("--scale", type=float, default=1.0, help="drawing scale (default %(default)s)")
    parser.add_argument("--grid", type=Path, default=None, metavar="FILE", help="also write all drawings as one PNG")
    parser.add_argument("--columns", type=int, default=None, help="columns of --grid (default: square)")
    parser.add_argument("--dataset", default=None, help="dataset whose class names to use (default DATASETS.TEST[0])")
    parser.add_argument("--package", default="generated", help="generated package providing the backbone")
    parser.add_argument("--package-root", default=None, metavar="DIR", help="directory holding --package")
    parser.add_argument("--shapes-root", default=None, metavar="DIR", help="cache of the shapes datasets")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides, KEY VALUE pairs")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    from tools import shapes_dataset, train_net

    args = argument_parser().parse_args(argv)
    if not args.input.is_dir():
        print(f"error: --input {args.input} is not a folder", file=sys.stderr)
        return 2
    images = list_images(args.input, args.limit)
    if not images:
        print(f"error: no images ({', '.join(IMAGE_SUFFIXES)}) in {args.input}", file=sys.stderr)
        return 2
    cfg = train_net.build_config(args)
    cfg.MODEL.WEIGHTS = str(args.weights)
    train_net.ensure_backbone(cfg, args.package, args.package_root)
    shapes_dataset.register_for_datasets([args.dataset] if args.dataset else list(cfg.DATASETS.TEST), args.shapes_root)
    records = visualize(cfg, images, args.output, args.threshold, args.scale, args.dataset)
    total = sum(len(r["detections"]) for r in records)
    print(f"{len(records)} images, {total} detections with score >= {args.threshold}: {args.output}")
    if args.grid:
        from PIL import Image

        pictures = [np.asarray(Image.open(r["output"]).convert("RGB")) for r in records]
        args.grid.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(make_grid(pictures, args.columns)).save(args.grid)
        print(f"grid of {len(pictures)} images: {args.grid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
