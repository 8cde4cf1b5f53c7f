#!/usr/bin/env python
"""Inference speed of generated backbones against what they replace, same input.

(a) plain: the generated backbone (``build_<model>_backbone``, built through detectron2's
    ``BACKBONE_REGISTRY`` from a config extended by ``add_timm_config``) against bare
    ``timm.create_model(model, features_only=True)`` returning the same feature levels,
    with the same weights (the outputs are checked to be identical), for each ``--model``
    (default resnet50 and swin_tiny at COCO's 800x1216). The generated one takes any
    input size: at a size detectron2 has padded, its own padding and cropping must cost
    nothing. Target: at most 1% slower (time ratio <= 1.01).
(b) fpn: the generated ResNet FPN backbone (``build_<fpn-model>_fpn_backbone``) against
    detectron2's own ``build_resnet_fpn_backbone`` with the R50-FPN settings (depth from
    the model name, res2..res5 into a 256-channel FPN with a max-pooled p6), with the
    batch norm that matches timm's: ``MODEL.RESNETS.NORM BN`` (eval mode) and the stride
    in the 3x3 convolution (``STRIDE_IN_1X1 False``, as timm and torchvision do), both at
    ``FREEZE_AT 0``. Target: the generated one at most 5% slower (ratio <= 1.05).

Both run in eval mode under ``torch.no_grad()`` with ``--threads`` torch threads (default
1: steadier on a shared machine). After ``--warmup`` passes, each of ``--repeat`` repeats
times ``--number`` forwards of each candidate back to back, alternating which goes first,
so that drift and a busy machine affect both alike; the figure is the median over repeats
of the per-repeat time ratio.

    .venv/bin/python tools/dev/bench_forward.py                             # 800x1216, 11 repeats
    .venv/bin/python tools/dev/bench_forward.py --model convnext_tiny --compare plain --json out/fwd.json
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

if __package__ in (None, ""):  # run as a script: make `tools` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tools.args import image_size, script_parser
from tools.dev.bench_common import ROOT, Figure, add_json_argument, at_most, machine_info, median, report

PLAIN_TARGET = 1.01
PLAIN_MODELS = ("resnet50", "swin_tiny_patch4_window7_224")
FPN_TARGET = 1.05
RESNET_DEPTHS = {"resnet18": 18, "resnet34": 34, "resnet50": 50, "resnet101": 101, "resnet152": 152}
FPN_FEATURES = ["res2", "res3", "res4", "res5"]


# ----------------------------------------------------------------------------- models


def _generated():
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import generated

    return generated


def backbone_class(model: str):
    """The generated backbone class of ``model`` (public API only)."""
    generated = _generated()
    module = generated.model_module(model)
    for name in getattr(module, "__all__", ()):
        value = getattr(module, name)
        if isinstance(value, type):
            return getattr(generated, name)
    raise LookupError(f"no backbone class in {module.__name__}")


def generated_backbone(model: str, *, fpn: bool, freeze_at: int = 0, overrides: Sequence[str] = ()):
    """``build_<model>[_fpn]_backbone`` from a detectron2 config, through the registry."""
    from detectron2.config import get_cfg
    from detectron2.modeling import build_backbone

    generated = _generated()
    cfg = get_cfg()
    generated.add_timm_config(cfg)
    cfg.MODEL.BACKBONE.NAME = f"build_{model}_fpn_backbone" if fpn else f"build_{model}_backbone"
    cfg.MODEL.BACKBONE.FREEZE_AT = freeze_at
    cfg.merge_from_list(list(overrides))
    if not generated.ensure_registered(cfg):
        raise SystemExit(f"{cfg.MODEL.BACKBONE.NAME} is not in the generated package")
    return build_backbone(cfg).eval()


def timm_features(model: str, out_indices: Sequence[int], create_kwargs: Dict[str, object]):
    import timm

    return timm.create_model(model, pretrained=False, features_only=True, out_indices=tuple(out_indices),
                             **create_kwargs).eval()  # fmt: skip


def detectron2_resnet_fpn(depth: int, *, norm: str = "BN", stride_in_1x1: bool = False, freeze_at: int = 0):
    """detectron2's ``build_resnet_fpn_backbone`` with the R50-FPN settings."""
    from detectron2.config import get_cfg
    from detectron2.modeling import build_backbone

    cfg = get_cfg()
    cfg.MODEL.BACKBONE.NAME = "build_resnet_fpn_backbone"
    cfg.MODEL.BACKBONE.FREEZE_AT = freeze_at
    cfg.MODEL.RESNETS.DEPTH = depth
    cfg.MODEL.RESNETS.OUT_FEATURES = list(FPN_FEATURES)
    cfg.MODEL.RESNETS.NORM = norm
    cfg.MODEL.RESNETS.STRIDE_IN_1X1 = stride_in_1x1
    if depth in (18, 34):
        cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    cfg.MODEL.FPN.IN_FEATURES = list(FPN_FEATURES)
    cfg.MODEL.FPN.OUT_CHANNELS = 256
    return build_backbone(cfg).eval()


def parameter_count(module) -> int:
    return sum(p.numel() for p in module.parameters())


# ----------------------------------------------------------------------------- timing


def interleaved(
    candidate: Callable[[], object], reference: Callable[[], object], *, repeat: int, warmup: int, number: int
) -> Tuple[List[float], List[float]]:
    """Seconds per call of each, per repeat; the order alternates between repeats."""
    for _ in range(warmup):
        candidate()
        reference()
    times: Dict[str, List[float]] = {"candidate": [], "reference": []}
    pair = [("candidate", candidate), ("reference", reference)]
    for attempt in range(repeat):
        for label, fn in pair if attempt % 2 == 0 else pair[::-1]:
            start = time.perf_counter()
            for _ in range(number):
                fn()
            times[label].append((time.perf_counter() - start) / number)
    return times["candidate"], times["reference"]


def compare(
    key: str,
    candidate_label: str,
    reference_label: str,
    candidate,
    reference,
    x,
    target: float,
    args: argparse.Namespace,
    note: str,
) -> List[Figure]:
    import torch

    with torch.no_grad():
        cand, ref = interleaved(lambda: candidate(x), lambda: reference(x), repeat=args.repeat, warmup=args.warmup,
                                number=args.number)  # fmt: skip
    ratios = [c / r for c, r in zip(cand, ref)]
    ratio = median(ratios)
    return [
        Figure(f"({key}) {candidate_label}", [t * 1e3 for t in cand], unit="ms"),
        Figure(f"({key}) {reference_label}", [t * 1e3 for t in ref], unit="ms"),
        Figure(f"({key}) time ratio generated / {reference_label.split(' ')[0]}", ratios, unit="x",
               target=f"<= {target:.2f} (at most {round((target - 1) * 100)}% slower)",
               passed=at_most(ratio, target), note=note),  # fmt: skip
    ]


def plain_comparison(args: argparse.Namespace, model: str, key: str) -> List[Figure]:
    import torch

    cls = backbone_class(model)
    height, width = args.size
    if getattr(cls, "FIXED_INPUT_SIZE", False):
        height = width = getattr(cls, "IMG_SIZE", 0) or cls.INPUT_SIZE[0]
    divisor = getattr(cls, "SIZE_DIVISIBILITY", 1) or 1
    if height % divisor or width % divisor:
        raise SystemExit(f"--size {height}x{width}: {model} needs multiples of {divisor}")
    torch.manual_seed(0)
    generated = generated_backbone(model, fpn=False)
    names = generated.output_shape()
    by_name = {feature.name: feature for feature in cls.FEATURES}
    indices = [by_name[name].index for name in names if name in by_name]
    create_kwargs = dict(getattr(cls, "CREATE_KWARGS", {}) or {})
    if getattr(cls, "IMG_SIZE", 0):
        create_kwargs["img_size"] = cls.IMG_SIZE
    bare = timm_features(model, indices, create_kwargs)
    # Same weights (the generated backbone holds timm's features_only model; its state
    # keys carry one prefix), so that both do the same arithmetic on the same numbers.
    state = generated.state_dict()
    prefixes = {key.split(".", 1)[0] for key in state}
    copied = False
    if len(prefixes) == 1:
        prefix = prefixes.pop() + "."
        try:
            bare.load_state_dict({k[len(prefix):]: v for k, v in state.items()}, strict=True)
            copied = True
        except RuntimeError:
            copied = False
    x = torch.randn(args.batch, 3, height, width)
    with torch.no_grad():
        got, expected = generated(x), bare(x)
    if isinstance(expected, dict):
        expected = list(expected.values())
    if getattr(cls, "LAYOUT", "NCHW") == "NHWC":  # the generated backbone permutes timm's NHWC maps (a view)
        expected = [e.permute(0, 3, 1, 2) for e in expected]
    same = copied and len(got) == len(expected) and all(torch.equal(a, b) for a, b in zip(got.values(), expected))
    checks = (f"weights copied, outputs identical: {'yes' if same else 'NO'}" if copied
              else "weights could not be copied: outputs not compared")  # fmt: skip
    note = (f"{model}, timm out_indices {tuple(indices)} = generated outputs {', '.join(names)}; "
            f"input {args.batch}x3x{height}x{width}; {checks}")  # fmt: skip
    return compare(key, f"generated {model} plain backbone", "timm features_only", generated, bare, x,
                   PLAIN_TARGET, args, note)  # fmt: skip


def fpn_comparison(args: argparse.Namespace) -> List[Figure]:
    import torch

    model = args.fpn_model
    if model not in RESNET_DEPTHS:
        raise SystemExit(f"--fpn-model {model!r}: detectron2's ResNet has {', '.join(RESNET_DEPTHS)}")
    cls = backbone_class(model)
    if tuple(cls.FPN_IN_FEATURES) != tuple(FPN_FEATURES):
        raise SystemExit(f"{model}'s FPN inputs are {cls.FPN_IN_FEATURES}, not {FPN_FEATURES}")
    overrides = ["MODEL.FPN.IN_FEATURES", str(FPN_FEATURES), "MODEL.FPN.OUT_CHANNELS", "256"]
    torch.manual_seed(0)
    generated = generated_backbone(model, fpn=True, freeze_at=args.freeze_at, overrides=overrides)
    torch.manual_seed(0)
    reference = detectron2_resnet_fpn(RESNET_DEPTHS[model], norm=args.reference_norm,
                                      stride_in_1x1=args.stride_in_1x1, freeze_at=args.freeze_at)  # fmt: skip
    height, width = args.size
    if height % 32 or width % 32:
        raise SystemExit(f"--size {height}x{width}: the FPN comparison needs multiples of 32")
    x = torch.randn(args.batch, 3, height, width)
    with torch.no_grad():
        got, expected = generated(x), reference(x)
    shapes_match = {k: tuple(v.shape) for k, v in got.items()} == {k: tuple(v.shape) for k, v in expected.items()}
    params = parameter_count(generated), parameter_count(reference)
    note = (f"{model} vs detectron2 R{RESNET_DEPTHS[model]}-FPN (NORM {args.reference_norm}, STRIDE_IN_1X1 "
            f"{args.stride_in_1x1}, FREEZE_AT {args.freeze_at} for both); input {args.batch}x3x{height}x{width}; "
            f"outputs {', '.join(got)} with {'the same' if shapes_match else 'DIFFERENT'} shapes; parameters "
            f"{params[0] / 1e6:.2f}M vs {params[1] / 1e6:.2f}M")  # fmt: skip
    return compare("b", f"generated {model} FPN backbone", f"detectron2 R{RESNET_DEPTHS[model]}-FPN", generated,
                   reference, x, FPN_TARGET, args, note)  # fmt: skip


def argument_parser() -> argparse.ArgumentParser:
    parser = script_parser(__doc__)
    parser.add_argument("--model", nargs="+", default=list(PLAIN_MODELS),
                        help="generated models for (a) (default %(default)s)")  # fmt: skip
    parser.add_argument("--fpn-model", default="resnet50", choices=sorted(RESNET_DEPTHS, key=RESNET_DEPTHS.get),
                        help="generated ResNet for (b), compared with detectron2's of the same depth "
                        "(default %(default)s)")  # fmt: skip
    parser.add_argument("--compare", nargs="+", choices=("plain", "fpn"), default=["plain", "fpn"],
                        help="which comparisons to run (default both)")  # fmt: skip
    parser.add_argument("--size", type=image_size, default=(800, 1216), metavar="HxW",
                        help="input size (default 800x1216: a COCO image at detectron2's 800/1333, padded to 32)")  # fmt: skip
    parser.add_argument("--batch", type=int, default=1, help="images per forward (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=11,
                        help="timed repeats; medians are reported (default %(default)s)")  # fmt: skip
    parser.add_argument("--number", type=int, default=1,
                        help="forwards per candidate in each repeat (default %(default)s)")  # fmt: skip
    parser.add_argument("--warmup", type=int, default=2, help="untimed forwards of each first (default %(default)s)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default %(default)s; 0: torch's default)")  # fmt: skip
    parser.add_argument("--freeze-at", type=int, default=0, help="MODEL.BACKBONE.FREEZE_AT of both in (b) (default 0)")
    parser.add_argument("--reference-norm", default="BN", help="MODEL.RESNETS.NORM of detectron2's ResNet (default BN)")
    parser.add_argument("--stride-in-1x1", action="store_true",
                        help="detectron2's MSRA-style stride in the 1x1 convolution (its default; fewer FLOPs than "
                        "timm's resnet, so not a like-for-like comparison)")  # fmt: skip
    add_json_argument(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = argument_parser().parse_args(argv)
    if args.repeat < 1 or args.number < 1 or args.warmup < 0:
        raise SystemExit("--repeat and --number must be at least 1, --warmup at least 0")
    info = machine_info()
    warnings.filterwarnings("ignore", category=FutureWarning)  # torch.jit.script deprecation, from imports
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    print(f"forward benchmark: {', '.join(args.compare)}; {args.repeat} repeats of {args.number} forward(s) "
          f"after {args.warmup} warm-up, {threads} thread(s), input {args.batch}x3x{args.size[0]}x{args.size[1]}",
          flush=True)  # fmt: skip
    figures: List[Figure] = []
    if "plain" in args.compare:
        for number, model in enumerate(args.model, 1):
            figures += plain_comparison(args, model, f"a{number}" if len(args.model) > 1 else "a")
    if "fpn" in args.compare:
        figures += fpn_comparison(args)
    settings = {
        "model": args.model, "fpn_model": args.fpn_model, "size": f"{args.size[0]}x{args.size[1]}",
        "batch": args.batch, "repeat": args.repeat, "number": args.number, "warmup": args.warmup, "threads": threads,
        "freeze_at": args.freeze_at, "reference_norm": args.reference_norm, "stride_in_1x1": args.stride_in_1x1,
    }  # fmt: skip
    report("backbone forward time (eval, no_grad)", figures, info, settings=settings, json_path=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
