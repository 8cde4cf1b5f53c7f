"""An embedded, deterministic COCO-format instance-segmentation dataset: simple shapes.

Nothing is downloaded. Images of circles, squares and triangles in a few colours, several
per image and possibly overlapping, on textured, noisy backgrounds are drawn from a
seeded numpy generator and written once as PNGs plus COCO JSON (polygon masks of the
*visible* part of each shape) under a cache directory::

    <root>/<preset>-<hash>/
        dataset.json                     marker: spec, generator version, digests
        train/000000.png ...             images
        val/000000.png ...
        annotations/instances_train.json
        annotations/instances_val.json

``<root>`` is ``$D2TIMM_SHAPES_DIR`` or ``<repo>/.cache/shapes``. ``<hash>`` covers the
spec and :data:`GENERATOR_VERSION`, so a changed generator or spec never reuses stale
files; an existing directory is reused when its marker matches. Generation writes a
temporary directory and renames it into place, so concurrent processes (pytest-xdist,
distributed ranks) never see a half-written dataset.

Each image is drawn from its own generator, seeded by (seed, split, index): the files do
not depend on the order or on how many images are generated before them.

Datasets are registered with detectron2 through ``register_coco_instances`` under
``<preset>_train`` and ``<preset>_val`` (``shapes_train``, ``shapes_val``,
``shapes_tiny_train`` ...)::

    python tools/shapes_dataset.py --preset shapes      # generate, print the directory
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
ROOT_ENV_VAR = "D2TIMM_SHAPES_DIR"
DEFAULT_ROOT = REPO_ROOT / ".cache" / "shapes"

#: Bump whenever the drawing code changes what is written: cached datasets are then
#: regenerated instead of reused.
GENERATOR_VERSION = 2

CLASSES: Tuple[str, ...] = ("circle", "square", "triangle")
#: Fill colours (RGB); a shape's colour is independent of its class.
PALETTE: Dict[str, Tuple[int, int, int]] = {
    "red": (215, 48, 39),
    "green": (50, 170, 70),
    "blue": (40, 100, 215),
    "yellow": (235, 200, 40),
    "magenta": (195, 55, 185),
    "cyan": (40, 185, 200),
}
#: Colours used to draw each class in visualisations (detectron2 ``thing_colors``).
CLASS_COLORS: Tuple[Tuple[int, int, int], ...] = ((230, 25, 75), (60, 180, 75), (0, 130, 200))
SPLITS: Tuple[str, ...] = ("train", "val")
MARKER = "dataset.json"


@dataclasses.dataclass(frozen=True)
class ShapesSpec:
    """Everything that determines the files of a dataset."""

    image_size: int = 128
    num_train: int = 600
    num_val: int = 100
    min_objects: int = 2
    max_objects: int = 5
    #: Shape size (circumscribed diameter) as a fraction of the image size.
    min_scale: float = 0.12
    max_scale: float = 0.38
    #: A placement is rejected if it hides more than this fraction of an earlier shape.
    max_occlusion: float = 0.45
    noise: float = 10.0
    seed: int = 0

    def __post_init__(self):
        if self.image_size < 32:
            raise ValueError(f"image_size must be at least 32, got {self.image_size}")
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError(f"need 1 <= min_objects <= max_objects, got {self.min_objects}, {self.max_objects}")
        if not 0 < self.min_scale <= self.max_scale < 1:
            raise ValueError(f"need 0 < min_scale <= max_scale < 1, got {self.min_scale}, {self.max_scale}")
        if self.num_train < 1 or self.num_val < 1:
            raise ValueError("num_train and num_val must be at least 1")

    def num_images(self, split: str) -> int:
        return {"train": self.num_train, "val": self.num_val}[split]

    def digest(self) -> str:
        payload = json.dumps({"generator_version": GENERATOR_VERSION, **dataclasses.asdict(self)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


#: Named datasets. ``<name>_train`` / ``<name>_val`` are the detectron2 dataset names.
PRESETS: Dict[str, ShapesSpec] = {
    # The demo's dataset: 128x128 images, small enough to train on a CPU in minutes.
    "shapes": ShapesSpec(),
    # Tiny and quick, for tests.
    "shapes_tiny": ShapesSpec(
        image_size=64, num_train=16, num_val=8, min_objects=1, max_objects=3, min_scale=0.25, max_scale=0.5
    ),
}


# ----------------------------------------------------------------------------- drawing


def _shape_polygon(kind: str, cx: float, cy: float, size: float, angle: float) -> np.ndarray:
    """Vertices (N, 2) of a shape whose circumscribed circle has diameter ``size``."""
    radius = size / 2
    if kind == "circle":
        theta = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    elif kind == "square":
        theta = angle + np.pi / 4 + np.arange(4) * np.pi / 2
    elif kind == "triangle":
        theta = angle - np.pi / 2 + np.arange(3) * 2 * np.pi / 3
    else:  # pragma: no cover - CLASSES is closed
        raise ValueError(kind)
    return np.stack([cx + radius * np.cos(theta), cy + radius * np.sin(theta)], axis=1)


def _rasterize(vertices: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image, ImageDraw

    canvas = Image.new("L", (size, size), 0)
    ImageDraw.Draw(canvas).polygon([tuple(map(float, v)) for v in vertices], fill=1)
    return np.asarray(canvas, dtype=bool)


def _contours(mask: np.ndarray) -> List[np.ndarray]:
    """Closed outlines (x, y in image coordinates, on pixel edges) of a binary mask."""
    import contourpy

    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return []
    y0, x0 = ys.min(), xs.min()
    crop = mask[y0 : ys.max() + 1, x0 : xs.max() + 1]
    padded = np.pad(crop.astype(np.float64), 1)
    lines = contourpy.contour_generator(z=padded, line_type="Separate").lines(0.5)
    # Index i of the padded crop is the centre of pixel i-1 (+ the crop's offset), whose
    # continuous coordinate is i-0.5: outlines run along pixel edges.
    offset = np.array([x0 - 0.5, y0 - 0.5])
    return [np.asarray(line, dtype=np.float64) + offset for line in lines]


def _simplify(points: np.ndarray, tolerance: float) -> np.ndarray:
    """Ramer-Douglas-Peucker on a closed polygon (first point repeated at the end or not)."""
    if len(points) > 1 and np.allclose(points[0], points[-1]):
        points = points[:-1]
    # Drop the points in the middle of straight runs (most of a traced outline).
    before, after = np.roll(points, 1, axis=0) - points, np.roll(points, -1, axis=0) - points
    bends = np.abs(before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0]) > 1e-9
    points = points[bends] if bends.sum() >= 3 else points
    if len(points) <= 4:
        return points

    def rdp(segment: np.ndarray) -> np.ndarray:
        start, end = segment[0], segment[-1]
        direction = end - start
        norm = float(np.hypot(*direction))
        offsets = segment - start
        if norm == 0:
            distances = np.hypot(offsets[:, 0], offsets[:, 1])
        else:
            distances = np.abs(direction[0] * offsets[:, 1] - direction[1] * offsets[:, 0]) / norm
        index = int(np.argmax(distances))
        if distances[index] <= tolerance:
            return np.stack([start, end])
        return np.concatenate([rdp(segment[: index + 1])[:-1], rdp(segment[index:])])

    # Split the ring at the point farthest from the first one, simplify both halves.
    far = int(np.argmax(np.hypot(*(points - points[0]).T)))
    ring = np.concatenate([points, points[:1]])
    first, second = rdp(ring[: far + 1]), rdp(ring[far:])
    return np.concatenate([first[:-1], second[:-1]])


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A textured background: base colour, low-frequency blotches, stripes and lines."""
    from PIL import Image, ImageDraw

    base = rng.uniform(70, 185, size=3)
    coarse = rng.normal(0, 28, size=(5, 5, 3))
    field = np.stack(
        [
            np.asarray(Image.fromarray(coarse[..., c].astype(np.float32), mode="F").resize((size, size), Image.BICUBIC))
            for c in range(3)
        ],
        axis=-1,
    )
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(6, 24)
    stripes = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)[..., None]
    image = base + field + rng.uniform(0, 12) * stripes
    canvas = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(2, 7))):  # clutter that is not an object
        x0, y0, x1, y1 = rng.uniform(0, size, size=4)
        shade = tuple(int(v) for v in np.clip(base + rng.normal(0, 45, size=3), 0, 255))
        draw.line([(x0, y0), (x1, y1)], fill=shade, width=int(rng.integers(1, 4)))
    return np.asarray(canvas, dtype=np.float64)


def draw_image(spec: ShapesSpec, split: str, index: int) -> Tuple[np.ndarray, List[dict]]:
    """One image (H, W, 3 uint8) and its instances: class, colour, visible mask, polygon."""
    rng = np.random.default_rng([spec.seed, SPLITS.index(split), index, GENERATOR_VERSION])
    size = spec.image_size
    image = _background(rng, size)
    columns = np.arange(size, dtype=np.float64)[None, :].repeat(size, axis=0)
    placed: List[dict] = []
    wanted = int(rng.integers(spec.min_objects, spec.max_objects + 1))
    attempts = 0
    while len(placed) < wanted and attempts < 40 * wanted:
        attempts += 1
        kind = CLASSES[int(rng.integers(len(CLASSES)))]
        color = list(PALETTE)[int(rng.integers(len(PALETTE)))]
        diameter = rng.uniform(spec.min_scale, spec.max_scale) * size
        radius = diameter / 2
        cx, cy = rng.uniform(radius + 1, size - radius - 1, size=2)
        vertices = _shape_polygon(kind, cx, cy, diameter, rng.uniform(0, 2 * np.pi))
        mask = _rasterize(vertices, size)
        if mask.sum() < 0.25 * (spec.min_scale * size) ** 2 or len(_contours(mask)) != 1:
            continue  # too small, or a sliver of a tip touching only diagonally
        # The new shape is drawn on top: every earlier shape must stay mostly visible and
        # in one piece without holes (one outline), so its polygon is exact.
        updated = []
        for inst in placed:
            visible = inst["mask"] & ~mask
            if (inst["mask"] & mask).any():
                if visible.sum() < (1 - spec.max_occlusion) * inst["full_area"] or len(_contours(visible)) != 1:
                    break
            updated.append(visible)
        else:
            for inst, visible in zip(placed, updated):
                inst["mask"] = visible
            placed.append(dict(kind=kind, color=color, mask=mask, full_area=int(mask.sum())))
            fill = np.asarray(PALETTE[color], dtype=np.float64) + rng.normal(0, 12, size=3)
            shade = rng.uniform(-18, 18) * (columns - cx) / max(radius, 1)  # a little lighting
            image[mask] = np.clip(fill + shade[mask][:, None], 0, 255)
    image = image + rng.normal(0, spec.noise, size=image.shape)
    instances = []
    for inst in placed:
        outline = _simplify(_contours(inst["mask"])[0], tolerance=0.5)
        x0, y0 = outline.min(axis=0)
        x1, y1 = outline.max(axis=0)
        xs, ys = outline[:, 0], outline[:, 1]
        area = 0.5 * abs(float(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1))))  # shoelace
        instances.append(
            dict(
                kind=inst["kind"],
                color=inst["color"],
                mask=inst["mask"],
                # COCO style: box and area are those of the polygon.
                polygon=[round(float(v), 2) for v in outline.reshape(-1)],
                bbox=[round(float(v), 2) for v in (x0, y0, x1 - x0, y1 - y0)],
                area=round(area, 2),
            )
        )
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), instances


# ------------------------------------------------------------------------ writing


def default_root() -> Path:
    return Path(os.environ.get(ROOT_ENV_VAR) or DEFAULT_ROOT)


def dataset_dir(name: str, spec: ShapesSpec, root: Optional[os.PathLike] = None) -> Path:
    return Path(root or default_root()) / f"{name}-{spec.digest()}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_split(spec: ShapesSpec, split: str, directory: Path) -> dict:
    from PIL import Image

    (directory / split).mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for index in range(spec.num_images(split)):
        pixels, instances = draw_image(spec, split, index)
        file_name = f"{index:06d}.png"
        Image.fromarray(pixels).save(directory / split / file_name, format="PNG", optimize=False)
        image_id = index + 1
        images.append(dict(id=image_id, file_name=file_name, width=spec.image_size, height=spec.image_size))
        for inst in instances:
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=image_id,
                    category_id=CLASSES.index(inst["kind"]) + 1,
                    segmentation=[inst["polygon"]],
                    area=inst["area"],
                    bbox=inst["bbox"],
                    iscrowd=0,
                    attributes=dict(color=inst["color"]),
                )
            )
    return dict(
        info=dict(
            description=f"d2timm embedded shapes dataset ({split})",
            version=str(GENERATOR_VERSION),
            year=2024,
            contributor="d2timm tools/shapes_dataset.py",
            date_created="",
            url="",
        ),
        licenses=[],
        images=images,
        annotations=annotations,
        categories=[dict(id=i + 1, name=name, supercategory="shape") for i, name in enumerate(CLASSES)],
    )


def _marker(spec: ShapesSpec, directory: Path) -> dict:
    return dict(
        generator_version=GENERATOR_VERSION,
        spec=dataclasses.asdict(spec),
        digest=spec.digest(),
        annotations={
            split: _sha256(directory / "annotations" / f"instances_{split}.json") for split in SPLITS
        },
    )


def is_complete(directory: Path, spec: ShapesSpec) -> bool:
    """The directory holds this spec's dataset: marker, annotations and every image."""
    try:
        marker = json.loads((directory / MARKER).read_text())
    except (OSError, ValueError):
        return False
    if marker.get("generator_version") != GENERATOR_VERSION or marker.get("spec") != dataclasses.asdict(spec):
        return False
    try:
        if marker.get("annotations") != _marker(spec, directory)["annotations"]:
            return False
    except OSError:
        return False
    return all(
        (directory / split / f"{i:06d}.png").is_file() for split in SPLITS for i in range(spec.num_images(split))
    )


def generate(
    name: str = "shapes", spec: Optional[ShapesSpec] = None, root: Optional[os.PathLike] = None, force: bool = False
) -> Path:
    """Write the dataset (unless a matching one is there) and return its directory."""
    spec = spec or PRESETS[name]
    final = dataset_dir(name, spec, root)
    if not force and is_complete(final, spec):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        (work / "annotations").mkdir()
        for split in SPLITS:
            coco = _write_split(spec, split, work)
            text = json.dumps(coco, sort_keys=True, separators=(",", ":"))
            (work / "annotations" / f"instances_{split}.json").write_text(text + "\n")
        (work / MARKER).write_text(json.dumps(_marker(spec, work), indent=1, sort_keys=True) + "\n")
        if final.exists():
            if not force and is_complete(final, spec):  # another process finished first
                return final
            stale = final.with_name(f".{final.name}-stale-{os.getpid()}")
            os.replace(final, stale)
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.replace(work, final)
        except OSError:
            if not is_complete(final, spec):  # lost a race to a process that wrote it
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


# --------------------------------------------------------------------- detectron2


def dataset_names(name: str = "shapes") -> Dict[str, str]:
    return {split: f"{name}_{split}" for split in SPLITS}


def register(name: str = "shapes", spec: Optional[ShapesSpec] = None, root: Optional[os.PathLike] = None) -> Dict[str, str]:
    """Generate if needed and register ``<name>_train`` / ``<name>_val`` with detectron2.

    Idempotent; a registration pointing at other files (another root) is replaced.
    Returns {split: detectron2 dataset name}.
    """
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.data.datasets import register_coco_instances

    directory = generate(name, spec, root)
    names = dataset_names(name)
    for split, dataset in names.items():
        json_file = str(directory / "annotations" / f"instances_{split}.json")
        image_root = str(directory / split)
        if dataset in DatasetCatalog.list():
            metadata = MetadataCatalog.get(dataset)
            if getattr(metadata, "json_file", None) == json_file and getattr(metadata, "image_root", None) == image_root:
                continue
            DatasetCatalog.remove(dataset)
            MetadataCatalog.remove(dataset)
        register_coco_instances(
            dataset,
            dict(thing_classes=list(CLASSES), thing_colors=[list(c) for c in CLASS_COLORS]),
            json_file,
            image_root,
        )
    return names


def preset_of(dataset: str) -> Optional[str]:
    """The preset behind a detectron2 dataset name (``shapes_val`` -> ``shapes``), or None."""
    for split in SPLITS:
        suffix = f"_{split}"
        if dataset.endswith(suffix) and dataset[: -len(suffix)] in PRESETS:
            return dataset[: -len(suffix)]
    return None


def register_for_datasets(datasets: Iterable[str], root: Optional[os.PathLike] = None) -> List[str]:
    """Register every shapes preset that ``datasets`` name; returns the presets registered."""
    presets = sorted({p for p in map(preset_of, datasets) if p is not None})
    for preset in presets:
        register(preset, root=root)
    return presets


def register_for_config(cfg, root: Optional[os.PathLike] = None) -> List[str]:
    """Register the shapes datasets that ``cfg.DATASETS.TRAIN`` / ``TEST`` name."""
    return register_for_datasets(list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST), root=root)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="shapes", choices=sorted(PRESETS))
    parser.add_argument("--root", type=Path, default=None, help=f"cache root (default ${ROOT_ENV_VAR} or {DEFAULT_ROOT})")
    parser.add_argument("--seed", type=int, default=None, help="override the preset's seed")
    parser.add_argument("--force", action="store_true", help="regenerate even if a matching copy exists")
    args = parser.parse_args(argv)
    spec = PRESETS[args.preset]
    if args.seed is not None:
        spec = dataclasses.replace(spec, seed=args.seed)
    directory = generate(args.preset, spec, args.root, force=args.force)
    print(directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
