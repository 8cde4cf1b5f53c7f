#!/usr/bin/env python
"""Training speed: a generated backbone against detectron2's own, same settings.

    python tools/dev/benchmark_train.py                      # generated resnet50 vs detectron2 R50-FPN
    python tools/dev/benchmark_train.py --iterations 20 --image-size 128 --batch 4 \\
        --candidate configs/resnet/resnet18_fpn.yaml

Both models are Mask R-CNN with an FPN, built from their configs plus the same shapes
recipe (``tools/recipes.py``: image size, batch, heads, anchors, FREEZE_AT 0), and
trained on the same ``shapes_train`` batches on the CPU: detectron2's reference is its
model zoo's ``COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml`` with its ResNet-50
in trainable batch norm (``--reference-norm``; the zoo's frozen batch norm needs
pretrained weights, and diverges at the first step from random ones), the candidate a
generated backbone's seeded config. After
``--warmup`` steps, ``--iterations`` steps of each are timed, in ``--rounds`` alternating
rounds (the first model alternates too) so that a busy machine slows both alike; the
report gives the median seconds per iteration, iterations per second, and the median over
rounds of the per-round time ratio generated / detectron2, whose target is <= 1.05 (the
generated backbone at most 5% slower), with the machine and versions (``--json PATH``
writes the same).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tools.args import script_parser  # noqa: E402
from tools.dev.bench_common import Figure, add_json_argument, at_most, machine_info, median, report  # noqa: E402

REFERENCE = "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml"
#: The generated backbone's Mask R-CNN step may take at most this times detectron2's.
TARGET_RATIO = 1.05


def reference_config_file() -> str:
    """detectron2's model-zoo config (model_zoo needs pkg_resources: setuptools < 81)."""
    try:
        from detectron2 import model_zoo

        return model_zoo.get_config_file(REFERENCE)
    except Exception:  # fall back to the installed package's files
        import detectron2

        path = Path(detectron2.__file__).parent / "model_zoo" / "configs" / REFERENCE
        if not path.is_file():
            raise
        return str(path)


class Runner:
    """One model with its optimizer and data loader, stepping like SimpleTrainer."""

    def __init__(self, label: str, config_file: str, opts: List[str], shapes_root=None):
        from detectron2.data import build_detection_train_loader
        from detectron2.modeling import build_model
        from detectron2.solver import build_optimizer

        from tools import shapes_dataset, train_net

        args = train_net.argument_parser().parse_args(["--config-file", config_file, *opts])
        cfg = train_net.build_config(args)
        cfg.freeze()
        shapes_dataset.register_for_config(cfg, root=shapes_root)
        train_net.ensure_backbone(cfg)
        self.label, self.cfg = label, cfg
        self.model = build_model(cfg).train()
        self.optimizer = build_optimizer(cfg, self.model)
        self.data = iter(build_detection_train_loader(cfg))
        self.times: List[float] = []
        self.rounds: List[List[float]] = []
        self.parameters = sum(p.numel() for p in self.model.backbone.parameters())

    def step(self, record: bool) -> None:
        batch = next(self.data)  # loading is outside the timing, as in detectron2's "time"
        start = time.perf_counter()
        losses = self.model(batch)
        total = sum(losses.values())
        self.optimizer.zero_grad()
        total.backward()
        self.optimizer.step()
        if record:
            self.times.append(time.perf_counter() - start)
            self.rounds[-1].append(self.times[-1])


def argument_parser() -> argparse.ArgumentParser:
    parser = script_parser(__doc__)
    parser.add_argument("--candidate", default=str(REPO_ROOT / "configs" / "resnet" / "resnet50_fpn.yaml"),
                        help="config of the generated backbone (default: resnet50 FPN)")  # fmt: skip
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=10, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per model first")
    parser.add_argument("--rounds", type=int, default=5,
                        help="alternations between the models; the ratio is the median over rounds "
                        "(default %(default)s)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--reference-norm", default="BN",
                        help="MODEL.RESNETS.NORM of the reference (default %(default)s, as timm's resnet50 has; "
                        "the model zoo's FrozenBN diverges at once without pretrained weights)")  # fmt: skip
    parser.add_argument("--shapes-root", type=Path, default=None)
    parser.add_argument("--dataset", default="shapes", help="shapes preset to train on (default %(default)s; "
                        "shapes_tiny for a quick check)")  # fmt: skip
    parser.add_argument("--reference-opts", nargs="*", default=[], metavar="KEY VALUE",
                        help="more config overrides for the reference only, e.g. MODEL.RESNETS.STRIDE_IN_1X1 False "
                        "(timm's and torchvision's stride in the 3x3 convolution; the zoo's R50 strides in the 1x1, "
                        "which costs fewer FLOPs)")  # fmt: skip
    add_json_argument(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = argument_parser().parse_args(argv)
    if args.iterations < 1 or args.rounds < 1 or args.warmup < 0:
        raise SystemExit("--iterations and --rounds must be at least 1, --warmup at least 0")
    info = machine_info()
    import torch
    from detectron2.utils.events import EventStorage

    from tools import recipes

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    # No LR schedule here: a small constant rate keeps the untrained models from diverging.
    opts = recipes.shapes_opts(dataset=args.dataset, image_size=args.image_size, ims_per_batch=args.batch,
                               max_iter=1000, base_lr=0.002)  # fmt: skip
    runners = [
        Runner(f"detectron2 R50-FPN ({args.reference_norm})", reference_config_file(),
               opts + ["MODEL.RESNETS.NORM", args.reference_norm, *args.reference_opts], args.shapes_root),  # fmt: skip
        Runner(f"generated {Path(args.candidate).stem}", args.candidate, opts, args.shapes_root),
    ]
    per_round = max(1, args.iterations // args.rounds)
    print(f"Mask R-CNN training steps on {args.dataset}_train, {args.batch} images of {args.image_size}px per step, "
          f"{torch.get_num_threads()} threads, {per_round * args.rounds} timed steps each in "
          f"{args.rounds} rounds")  # fmt: skip
    with EventStorage(0):
        for runner in runners:
            for _ in range(args.warmup):
                runner.step(record=False)
        for attempt in range(args.rounds):
            for runner in runners if attempt % 2 == 0 else runners[::-1]:
                runner.rounds.append([])
                for _ in range(per_round):
                    runner.step(record=True)
    for runner in runners:
        step = median(runner.times)
        print(f"  {runner.label:<34} {step:6.3f} s/it  {1 / step:5.2f} it/s  "
              f"(mean {statistics.mean(runner.times):.3f}; backbone+FPN {runner.parameters / 1e6:.1f}M "
              "parameters)")  # fmt: skip
    reference, candidate = runners
    print(f"  speed ratio generated / detectron2: {median(reference.times) / median(candidate.times):.2f} "
          "(iterations per second)")  # fmt: skip
    ratios = [median(c) / median(r) for c, r in zip(candidate.rounds, reference.rounds)]
    ratio = median(ratios)
    figures = [
        Figure(f"{reference.label} train step", reference.times,
               note=f"backbone+FPN {reference.parameters / 1e6:.1f}M parameters; {REFERENCE} with RESNETS.NORM "
               f"{reference.cfg.MODEL.RESNETS.NORM}, STRIDE_IN_1X1 "
               f"{reference.cfg.MODEL.RESNETS.STRIDE_IN_1X1}"),  # fmt: skip
        Figure(f"{candidate.label} train step", candidate.times,
               note=f"backbone+FPN {candidate.parameters / 1e6:.1f}M parameters"),  # fmt: skip
        Figure("time ratio generated / detectron2", ratios, unit="x",
               target=f"<= {TARGET_RATIO:.2f} (at most {round((TARGET_RATIO - 1) * 100)}% slower)",
               passed=at_most(ratio, TARGET_RATIO),
               note="median over rounds of the ratio of the rounds' median step times"),  # fmt: skip
    ]
    settings = {
        "candidate": args.candidate, "dataset": args.dataset, "image_size": args.image_size, "batch": args.batch,
        "iterations": per_round * args.rounds, "rounds": args.rounds, "warmup": args.warmup,
        "threads": torch.get_num_threads(), "reference_norm": args.reference_norm,
        "reference_opts": " ".join(args.reference_opts),
    }  # fmt: skip
    report("Mask R-CNN training step", figures, info, settings=settings, json_path=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
