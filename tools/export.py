"""Export a generated backbone and its neck (FPN or simple pyramid) to ONNX, TorchScript or a torch.export program, then check it against the eager model.

The config is a YAML or a LazyConfig seed, as tools/train_net.py reads it; the backbone is
the one its model names (``MODEL.BACKBONE.NAME`` / ``model.backbone``), with ``--weights``
(a detectron2 checkpoint, as train_net writes) or the config's own. The exported module
takes ``image``: N x 3 x H x W float, already normalised with the config's pixel
statistics, and returns one map per level, named by the level (p2 ... p6, or the plain
variant's names), in ``output_shape()`` order.

After writing FILE it loads it back (onnxruntime, torch.jit.load, torch.export.load) and
compares it with the eager model on the export size and, for a dynamic export of a model
that takes any size, on a second size that is not a multiple of 32; it prints the largest
absolute and relative difference per output. A static export is specialised to its size:
the second size is reported, not claimed. Fixed-size models export at their built size.

Exit codes: 0 exported and equal within --rtol; 1 the export failed (the message names
the operator or construct) or the reloaded file differs from eager; 2 bad arguments.

Examples:
  .venv/bin/python tools/export.py --config-file configs/resnet/resnet18_fpn.yaml \\
      --format onnx --output resnet18_fpn.onnx --dynamic
  .venv/bin/python tools/export.py --config-file configs/convnext/convnext_tiny_mask_rcnn.py \\
      --format exported-program --output convnext_tiny.pt2
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from tools.bench_common import image_size, script_parser  # noqa: E402

FORMATS = ("onnx", "torchscript", "exported-program")
WHAT = ("backbone",)
#: The export size of a model that takes any size (rounded up to its size divisibility),
#: and the second size checked for a dynamic export: no side a multiple of 32.
EXPORT_SIZE = (320, 416)
SECOND_SIZE = (289, 383)
#: ONNX opset: what onnxruntime 1.20 runs and torch's exporter writes.
OPSET = 17
DEFAULT_RTOL = 1e-4


class ExportError(RuntimeError):
    """The export itself failed: the message names the operator or construct."""


def argument_parser() -> argparse.ArgumentParser:
    parser = script_parser(__doc__)
    parser.add_argument("--config-file", required=True, metavar="FILE", help="a YAML config or a LazyConfig (.py)")
    parser.add_argument("--weights", default=None, metavar="FILE", help="a detectron2 checkpoint (default: the config's)")
    parser.add_argument("--format", required=True, choices=FORMATS, dest="fmt")
    parser.add_argument("--output", required=True, metavar="FILE", help="the file to write")
    parser.add_argument("--dynamic", action="store_true", help="dynamic N, H and W (models that take any size)")
    parser.add_argument("--what", default="backbone", choices=WHAT, help="what to export (default: %(default)s)")
    parser.add_argument("--size", type=image_size, default=None, help="export size HEIGHTxWIDTH (default 320x416)")
    parser.add_argument("--rtol", type=float, default=DEFAULT_RTOL, help="largest relative difference accepted")
    parser.add_argument("--package", default="generated", help="the generated package (default: %(default)s)")
    parser.add_argument("--package-root", default=None, metavar="DIR", help="directory holding --package")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of a failed export")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides, as for tools/train_net.py")
    return parser


# ------------------------------------------------------------------------- the module


def build_backbone(args):
    """The backbone (with its neck) the config's model names, in eval mode on the CPU."""
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import instantiate
    from detectron2.modeling import build_model

    from tools import train_net

    cfg = train_net.build_config(args)
    if train_net.is_lazy_config(args.config_file):
        model = nn.Module()
        model.backbone = instantiate(cfg.model.backbone)
    else:
        cfg.MODEL.DEVICE = "cpu"
        train_net.ensure_backbone(cfg, args.package, args.package_root)
        model = build_model(cfg)
    if args.weights:
        DetectionCheckpointer(model).load(args.weights)
    return model.backbone.eval()


class Levels(nn.Module):
    """``image`` -> one map per level, in the backbone's ``output_shape()`` order."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.names = list(backbone.output_shape())

    def forward(self, image):
        maps = self.backbone(image)
        return tuple(maps[name] for name in self.names)


def bottom_up(backbone):
    return getattr(backbone, "bottom_up", backbone)


def sizes(backbone, requested) -> Tuple[Tuple[int, int], Tuple[int, int], bool]:
    """The export size, the second size, and whether the model takes any size."""
    net = bottom_up(backbone)
    if net.FIXED_INPUT_SIZE:  # built at one size: the exported graph takes that one
        side = net.img_size or net.INPUT_SIZE[0]
        return (side, side), (side, side), False
    step = backbone.size_divisibility
    height, width = requested or EXPORT_SIZE
    return (math.ceil(height / step) * step, math.ceil(width / step) * step), SECOND_SIZE, True


# ------------------------------------------------------------------------- exporters


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:400]


def export(module, example, fmt: str, output: str, dynamic: bool) -> None:
    try:
        if fmt == "onnx":
            axes = {"image": {0: "batch", 2: "height", 3: "width"}}
            axes.update({name: {0: "batch", 2: f"{name}_height", 3: f"{name}_width"} for name in module.names})
            torch.onnx.export(
                module,
                (example,),
                output,
                input_names=["image"],
                output_names=module.names,
                dynamic_axes=axes if dynamic else None,
                opset_version=OPSET,
                dynamo=False,
            )
        elif fmt == "torchscript":
            torch.jit.trace(module, (example,), check_trace=False).save(output)
        else:
            shapes = None
            if dynamic:
                auto = torch.export.Dim.AUTO
                shapes = {"image": {0: auto, 2: auto, 3: auto}}
            torch.export.save(torch.export.export(module, (example,), dynamic_shapes=shapes), output)
    except Exception as exc:
        raise ExportError(f"{fmt} export failed: {_first_line(exc)}") from exc


def runner(fmt: str, output: str):
    """A function image (torch) -> list of numpy maps, from the file written."""
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(output, providers=["CPUExecutionProvider"])
        return lambda image: session.run(None, {"image": image.numpy()})
    if fmt == "torchscript":
        loaded = torch.jit.load(output)
    else:
        loaded = torch.export.load(output).module()

    def run(image):
        with torch.no_grad():
            return [t.numpy() for t in loaded(image)]

    return run


def compare(module, run, size: Tuple[int, int], batch: int = 1) -> Dict[str, Tuple[float, float]]:
    """Largest absolute and relative difference per output, file vs eager, on a seeded image."""
    import numpy as np

    image = torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        eager = [t.numpy() for t in module(image)]
    exported = run(image)
    diffs = {}
    for name, a, b in zip(module.names, exported, eager):
        if a.shape != b.shape:
            raise ValueError(f"{name}: shape {a.shape} from the file, {b.shape} eager")
        absolute = float(np.abs(a - b).max())
        diffs[name] = (absolute, absolute / max(float(np.abs(b).max()), 1e-12))
    return diffs


def main(argv: Sequence[str] = None) -> int:
    args = argument_parser().parse_args(argv)
    if not os.path.isfile(args.config_file):
        print(f"error: --config-file {args.config_file!r} is not a file", file=sys.stderr)
        return 2
    if args.weights and not os.path.isfile(args.weights):
        print(f"error: --weights {args.weights!r} is not a file", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    backbone = build_backbone(args)
    module = Levels(backbone).eval()
    first, second, any_size = sizes(backbone, args.size)
    dynamic = args.dynamic and any_size
    if args.dynamic and not any_size:
        print(f"note: {type(bottom_up(backbone)).TIMM_MODEL} takes one size: exported at {first[0]}x{first[1]}, static")
    # a batch of 2 for a dynamic export: torch.export specialises a dimension of size 1
    example = torch.zeros(2 if dynamic else 1, 3, *first)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            export(module, example, args.fmt, args.output, dynamic)
        except ExportError as exc:
            print(f"error: {exc}", file=sys.stderr)
            if args.debug:
                raise
            return 1
        run = runner(args.fmt, args.output)
        checks: List[Tuple[Tuple[int, int], int]] = [(first, 1)]
        if dynamic:
            checks.append((second, 2))
        worst = 0.0
        for size, batch in checks:
            try:
                diffs = compare(module, run, size, batch)
            except Exception as exc:
                print(f"error: {args.output} fails at {batch}x3x{size[0]}x{size[1]}: {_first_line(exc)}", file=sys.stderr)
                return 1
            for name, (absolute, relative) in diffs.items():
                print(f"{batch}x3x{size[0]}x{size[1]} {name}: max abs diff {absolute:.3g}, max rel diff {relative:.3g}")
                worst = max(worst, relative)
    if not dynamic and any_size:
        print(f"note: static export, specialised to {first[0]}x{first[1]} (--dynamic for any size)")
    if worst > args.rtol:
        print(f"error: {args.output} differs from eager by {worst:.3g} relative (> --rtol {args.rtol})", file=sys.stderr)
        return 1
    print(f"wrote {args.output} ({args.fmt}{', dynamic N, H, W' if dynamic else ''}): equal to eager within {args.rtol}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
