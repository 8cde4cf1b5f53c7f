#!/usr/bin/env python
"""What padding costs the window and fixed-size models at COCO sizes.

Every generated backbone takes any input size by padding it (bottom and right) to what
its model needs: a multiple of its ``size_divisibility``, which detectron2 pads each batch
to. Most models need multiples of 32, as detectron2's own FPN does. Window models need
more (maxvit 224 to 512, halonet 256, mobilevitv2 64), and fixed-size models pad every
image to the square they are built at (1024 for most, as ViTDet). This script counts
the pixels: for COCO-shaped images resized by each model's own FPN seed (its test
resize, ``configs/<family>/<model>_fpn.yaml``), the padded batch against the same image
padded to 32, grouped by what the model needs. Pure arithmetic over the checked-in
package (no model is built), so the figure is exact and the same on any machine.

    .venv/bin/python tools/dev/bench_padding.py --json out/bench/padding.json
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

if __package__ in (None, ""):  # run as a script: make `tools` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tools.args import script_parser
from tools.dev.bench_common import ROOT, Figure, add_json_argument, machine_info, report

#: COCO's most common image shapes (H, W): 640 on the long side, landscape and portrait.
COCO_SHAPES = ((480, 640), (427, 640), (640, 480), (640, 427), (424, 640), (640, 640))
#: What detectron2's FPN pads to: the baseline every figure is measured against.
BASELINE = 32


def padded(side: int, step: int) -> int:
    return math.ceil(side / step) * step


def seed_resize(manifest: dict, model: str) -> Tuple[int, int]:
    """(MIN_SIZE_TEST, MAX_SIZE_TEST) of the model's FPN seed, as the manifest records
    what the generator wrote (the seeds may have been edited: the defaults are measured)."""
    short, longest = manifest["models"][model]["test_size"]
    return int(short), int(longest)


def group_of(spec: dict) -> Tuple[bool, int, str]:
    """(fixed, divisibility, name): the models are reported in this order."""
    divisibility = int(spec["fpn_size_divisibility"])
    if spec["facts"]["fixed_input_size"]:
        return True, divisibility, f"fixed size, padded to {divisibility}x{divisibility}"
    if divisibility <= BASELINE:
        return False, 0, f"any size, multiples of {BASELINE} or less"
    return False, divisibility, f"window models, multiples of {divisibility}"


def measure(manifest: dict) -> Dict[Tuple[bool, int, str], dict]:
    """Per group: the models and, over COCO_SHAPES, the pixels of the padded batch
    against the resized image padded to 32."""
    from detectron2.data.transforms import ResizeShortestEdge

    groups: Dict[str, dict] = defaultdict(lambda: {"models": [], "ratios": []})
    for model, spec in sorted(manifest["models"].items()):
        group = groups[group_of(spec)]
        group["models"].append(model)
        step = int(spec["fpn_size_divisibility"])
        short, longest = seed_resize(manifest, model)
        for height, width in COCO_SHAPES:
            h, w = ResizeShortestEdge.get_output_shape(height, width, short, longest)
            if spec["facts"]["fixed_input_size"]:
                area = step * step
            else:
                area = padded(h, step) * padded(w, step)
            group["ratios"].append(area / (padded(h, BASELINE) * padded(w, BASELINE)) - 1)
    return dict(groups)


def figures_of(groups: Dict[Tuple[bool, int, str], dict]) -> List[Figure]:
    figures = []
    for (_, _, name), group in sorted(groups.items()):
        models = group["models"]
        shown = ", ".join(models[:4]) + (", ..." if len(models) > 4 else "")
        figures.append(
            Figure(
                f"{name}: extra pixels vs padding to {BASELINE}",
                [100 * r for r in group["ratios"]],
                unit="%",
                note=f"{len(models)} models ({shown}); mean {100 * sum(group['ratios']) / len(group['ratios']):.1f} %, "
                f"worst {100 * max(group['ratios']):.1f} %",
                extra={"models": len(models)},
            )
        )
    return figures


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("--manifest", type=Path, default=ROOT / "generated" / "MANIFEST.json",
                        help="the generated package's manifest (default %(default)s)")  # fmt: skip
    add_json_argument(parser)
    args = parser.parse_args(argv)
    import json

    if not args.manifest.is_file():
        raise SystemExit(f"--manifest {args.manifest}: no such file")
    manifest = json.loads(args.manifest.read_text(encoding="utf-8"))
    groups = measure(manifest)
    shapes = ", ".join(f"{h}x{w}" for h, w in COCO_SHAPES)
    settings = {"images": shapes, "resize": "each model's FPN seed test resize", "baseline": f"padded to {BASELINE}"}
    report("padding at COCO sizes (median over models and images)", figures_of(groups), machine_info(),
           settings=settings, json_path=args.json)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
