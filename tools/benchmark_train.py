#!/usr/bin/env python
"""Training speed: a generated backbone against detectron2's own, same settings.

    python tools/benchmark_train.py                      # generated resnet50 vs detectron2 R50-FPN
    python tools/benchmark_train.py --iterations 20 --image-size 128 --batch 4 \\
        --candidate configs/resnet/resnet18_fpn.yaml

Both models are Mask R-CNN with an FPN, built from their configs plus the same shapes
recipe (``tools/recipes.py``: image size, batch, heads, anchors, FREEZE_AT 0), and
trained on the same ``shapes_train`` batches on the CPU: detectron2's reference is its
model zoo's ``COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml`` with its ResNet-50
in trainable batch norm (``--reference-norm``; the zoo's frozen batch norm needs
pretrained weights, and diverges at the first step from random ones), the candidate a
generated backbone's seeded config. After
``--warmup`` steps, ``--iterations`` steps of each are timed, in alternating rounds so
that a busy machine slows both alike; the report gives seconds per iteration, iterations
per second and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

REFERENCE = "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml"


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


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--candidate", default=str(REPO_ROOT / "configs" / "resnet" / "resnet50_fpn.yaml"),
                        help="config of the generated backbone (default: resnet50 FPN)")  # fmt: skip
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=10, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per model first")
    parser.add_argument("--rounds", type=int, default=2, help="alternations between the models")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--reference-norm", default="BN",
                        help="MODEL.RESNETS.NORM of the reference (default %(default)s, as timm's resnet50 has; "
                        "the model zoo's FrozenBN diverges at once without pretrained weights)")  # fmt: skip
    parser.add_argument("--shapes-root", type=Path, default=None)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = argument_parser().parse_args(argv)
    import torch
    from detectron2.utils.events import EventStorage

    from tools import recipes

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    # No LR schedule here: a small constant rate keeps the untrained models from diverging.
    opts = recipes.shapes_opts(image_size=args.image_size, ims_per_batch=args.batch, max_iter=1000, base_lr=0.002)
    runners = [
        Runner(f"detectron2 R50-FPN ({args.reference_norm})", reference_config_file(),
               opts + ["MODEL.RESNETS.NORM", args.reference_norm], args.shapes_root),  # fmt: skip
        Runner(f"generated {Path(args.candidate).stem}", args.candidate, opts, args.shapes_root),
    ]
    print(f"Mask R-CNN training steps on shapes_train, {args.batch} images of {args.image_size}px per step, "
          f"{torch.get_num_threads()} threads, {args.iterations} timed steps each in {args.rounds} rounds")  # fmt: skip
    per_round = max(1, args.iterations // args.rounds)
    with EventStorage(0):
        for runner in runners:
            for _ in range(args.warmup):
                runner.step(record=False)
        for _ in range(args.rounds):
            for runner in runners:
                for _ in range(per_round):
                    runner.step(record=True)
    results: Dict[str, float] = {}
    for runner in runners:
        median = statistics.median(runner.times)
        results[runner.label] = median
        print(f"  {runner.label:<34} {median:6.3f} s/it  {1 / median:5.2f} it/s  "
              f"(mean {statistics.mean(runner.times):.3f}; backbone+FPN {runner.parameters / 1e6:.1f}M parameters)")  # fmt: skip
    reference, candidate = (results[r.label] for r in runners)
    print(f"  speed ratio generated / detectron2: {reference / candidate:.2f} (iterations per second)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
