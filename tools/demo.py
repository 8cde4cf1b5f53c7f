#!/usr/bin/env python
"""The d2timm demo (``make demo``): generate a backbone, train a Mask R-CNN on it, look.

Stages, all on the CPU, nothing downloaded:

1. generate   ``d2timm-gen generate resnet18`` into a scratch directory
              (``.cache/demo/d2timm_demo`` and ``.cache/demo/configs``), never the
              repository's own ``generated`` package;
2. import     import the generated FPN backbone from there into detectron2 and print
              its output shapes for a dummy image;
3. dataset    draw the embedded shapes dataset (``tools/shapes_dataset.py``) once;
4. train      ``tools/train_net.py`` trains Mask R-CNN on that backbone from scratch,
              with the seeded config and the shapes recipe (``tools/recipes.py``), and
              evaluates it on the validation split (COCO bbox and mask AP);
5. look       predictions on validation images drawn into one PNG
              (``tools/visualize.py``) and the training losses plotted
              (``tools/plot_metrics.py``).

Outputs go to ``.cache/demo/output/`` (``--workdir`` to move them); the paths and AP
figures are printed at the end. ``--iterations`` trades time for accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import List, Optional, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tools import recipes, shapes_dataset  # noqa: E402  (imports neither torch nor detectron2)

DEFAULT_WORKDIR = REPO_ROOT / ".cache" / "demo"
PACKAGE = "d2timm_demo"
DEFAULT_MODEL = "resnet18"
DEFAULT_ITERATIONS = 500
GRID_IMAGES = 12


class Stages:
    """Numbered stage headers with elapsed time."""

    def __init__(self, total: int):
        self.total, self.number, self.start = total, 0, time.monotonic()

    def __call__(self, title: str) -> None:
        self.number += 1
        elapsed = time.monotonic() - self.start
        line = f"[{self.number}/{self.total}] {title}"
        clock = f"(+{elapsed:.0f}s)"
        line += " " * max(1, 78 - len(line) - len(clock)) + clock
        print(f"\n{'=' * 78}\n{line}\n{'=' * 78}", flush=True)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start


def _command(argv: Sequence[str]) -> str:
    shown = [os.path.relpath(a, Path.cwd()) if os.path.isabs(a) and a.startswith(str(REPO_ROOT)) else a for a in argv]
    return " ".join(shlex.quote(str(a)) for a in shown)


#: Lines of a training run shown live: progress, timing and results. The rest (the
#: environment report, the full config, the model) goes to OUTPUT_DIR/log.txt only.
SHOWN = re.compile(
    r"d2\.utils\.events|d2\.engine\.hooks|d2\.engine\.train_loop|d2\.evaluation\.(evaluator|testing)|"
    r"d2timm\.|Loaded \d+ images|Traceback|Error|error:|Saving checkpoint to .*final"
)


def _run(argv: List[str], what: str, condensed: bool = False, env: Optional[dict] = None) -> None:
    """Run a command from the repository root; ``condensed`` shows only :data:`SHOWN` lines
    (and the whole output if it fails)."""
    print(f"$ {_command(argv)}", flush=True)
    if not condensed:
        proc = subprocess.run(argv, cwd=REPO_ROOT)
        if proc.returncode != 0:
            raise SystemExit(f"demo: {what} failed (exit {proc.returncode}); see the output above")
        return
    lines: List[str] = []
    with subprocess.Popen(
        argv, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        for line in proc.stdout:
            lines.append(line)
            if SHOWN.search(line):
                print(line, end="", flush=True)
    if proc.returncode != 0:
        print("".join(lines[-80:]), end="")
        raise SystemExit(f"demo: {what} failed (exit {proc.returncode}); its last lines are above")


def generate_backbone(workdir: Path, model: str) -> None:
    _run(
        [sys.executable, "-m", "generator.cli", "generate", model, "--output", str(workdir), "--package", PACKAGE,
         "--jobs", "1"],
        "d2timm-gen generate",
    )  # fmt: skip


def show_backbone(workdir: Path, config: Path) -> None:
    """Import the scratch package's FPN backbone into detectron2; print its outputs."""
    import torch
    from detectron2.config import get_cfg
    from detectron2.modeling import BACKBONE_REGISTRY, build_backbone

    from tools.train_net import import_generated

    package = import_generated(PACKAGE, workdir)
    cfg = get_cfg()
    package.add_timm_config(cfg)
    cfg.merge_from_file(str(config))
    package.ensure_registered(cfg)
    builder = BACKBONE_REGISTRY.get(cfg.MODEL.BACKBONE.NAME)
    print(f"{cfg.MODEL.BACKBONE.NAME} registered from {builder.__module__} ({Path(package.__file__).parent})")
    backbone = build_backbone(cfg).eval()
    height, width = 256, 320  # any multiple of size_divisibility
    with torch.no_grad():
        outputs = backbone(torch.zeros(1, 3, height, width))
    shapes = backbone.output_shape()
    bottom_up = backbone.bottom_up
    print(f"input 1x3x{height}x{width}; bottom-up {type(bottom_up).__name__} (timm {bottom_up.TIMM_MODEL}), "
          f"size_divisibility {backbone.size_divisibility}")  # fmt: skip
    print(f"  {'output':<8} {'shape':<22} {'stride':>6} {'channels':>8}")
    for name, tensor in outputs.items():
        print(f"  {name:<8} {str(tuple(tensor.shape)):<22} {shapes[name].stride:>6} {shapes[name].channels:>8}")
    parameters = sum(p.numel() for p in backbone.parameters())
    print(f"  {parameters / 1e6:.1f}M parameters (FPN with {cfg.MODEL.FPN.OUT_CHANNELS} channels as seeded)")


def choose_threads(requested: Optional[int]) -> Optional[int]:
    """Threads for torch in the training run: ``--threads``, else $OMP_NUM_THREADS, else
    one per core that is idle now (1-minute load average). On a machine whose cores are
    busy with other work, fewer threads train faster: OpenMP's threads wait for each
    other at every operation, and a thread without a core of its own holds them all up.
    None leaves torch's default (all cores)."""
    if requested:
        return requested
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:
        return None
    idle = int(cores - busy + 0.5)
    return None if idle >= cores else max(1, idle)


def training_speed(metrics: Path) -> Optional[float]:
    """Iterations per second: the mean of the per-iteration times metrics.json logged."""
    times = []
    for line in metrics.read_text().splitlines():
        record = json.loads(line) if line.strip() else {}
        if "time" in record and "total_loss" in record:
            times.append(float(record["time"]))
    return 1.0 / (sum(times) / len(times)) if times else None


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="scratch directory (default %(default)s)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="timm model to generate and train on (default %(default)s)")
    parser.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS, help="training iterations (default %(default)s)")
    parser.add_argument("--batch", type=int, default=4, help="images per iteration (default %(default)s)")
    parser.add_argument("--lr", type=float, default=0.02, help="base learning rate (default %(default)s)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for training (default: one per idle core)")  # fmt: skip
    parser.add_argument("--shapes-root", type=Path, default=None, help="shapes dataset cache (default .cache/shapes)")
    parser.add_argument("--dataset", default="shapes", choices=sorted(shapes_dataset.PRESETS), help=argparse.SUPPRESS)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = argument_parser().parse_args(argv)
    # torch and detectron2 warn about their own deprecations: noise for a demo.
    os.environ.setdefault("PYTHONWARNINGS", "ignore::UserWarning,ignore::FutureWarning")
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    workdir = args.workdir.resolve()
    output = workdir / "output"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    threads = choose_threads(args.threads)  # before this process adds to the load
    stage = Stages(5)
    print(f"d2timm demo: {args.model} -> Mask R-CNN on the shapes dataset, CPU only; outputs in {output}")

    stage(f"generate: d2timm-gen generate {args.model} into {workdir} (package {PACKAGE})")
    generate_backbone(workdir, args.model)
    family = json.loads((workdir / PACKAGE / "MANIFEST.json").read_text())["models"][args.model]["facts"]["family"]
    config = workdir / "configs" / family / f"{args.model}_fpn.yaml"
    print(f"seeded config: {config}")

    stage(f"import: the generated FPN backbone into detectron2")
    show_backbone(workdir, config)

    stage("dataset: the embedded shapes dataset")
    spec = shapes_dataset.PRESETS[args.dataset]
    directory = shapes_dataset.generate(args.dataset, spec, args.shapes_root)
    for split in shapes_dataset.SPLITS:
        coco = json.loads((directory / "annotations" / f"instances_{split}.json").read_text())
        print(f"  {args.dataset}_{split}: {len(coco['images'])} images {spec.image_size}x{spec.image_size}, "
              f"{len(coco['annotations'])} instances of {', '.join(shapes_dataset.CLASSES)}")  # fmt: skip
    print(f"  in {directory}")

    stage(f"train and evaluate: Mask R-CNN, {args.iterations} iterations of {args.batch} images, from scratch")
    if output.exists():
        shutil.rmtree(output)
    opts = recipes.shapes_opts(
        dataset=args.dataset, image_size=spec.image_size, max_iter=args.iterations, ims_per_batch=args.batch,
        base_lr=args.lr, output_dir=str(output),
    )  # fmt: skip
    train_argv = [sys.executable, str(REPO_ROOT / "tools" / "train_net.py"), "--config-file", str(config),
                  "--package", PACKAGE, "--package-root", str(workdir), *opts]  # fmt: skip
    if args.shapes_root:
        train_argv[2:2] = ["--shapes-root", str(args.shapes_root)]
    environment = None
    if threads:
        environment = dict(os.environ, OMP_NUM_THREADS=str(threads))
        print(f"{os.cpu_count()} cores, load average {load:.1f} when the demo started: training "
              f"with {threads} thread{'s' if threads > 1 else ''} (--threads to choose)")  # fmt: skip
    print("(environment, config and model are logged to output/log.txt; progress every 20 iterations)")
    started = time.monotonic()
    _run(train_argv, "training", condensed=True, env=environment)
    train_seconds = time.monotonic() - started
    from tools.train_net import RESULTS_TRAIN

    results = json.loads((output / RESULTS_TRAIN).read_text())["results"]
    speed = training_speed(output / "metrics.json")

    stage("look: predictions on validation images, and the training losses")
    from tools import plot_metrics, visualize

    grid = output / "predictions.png"
    code = visualize.main(
        ["--config-file", str(output / "config.yaml"), "--weights", str(output / "model_final.pth"),
         "--input", str(directory / "val"), "--output", str(output / "predictions"), "--limit", str(GRID_IMAGES),
         "--scale", "2", "--columns", "4", "--grid", str(grid), "--package", PACKAGE, "--package-root", str(workdir)]
        + (["--shapes-root", str(args.shapes_root)] if args.shapes_root else [])
    )  # fmt: skip
    if code != 0:
        raise SystemExit("demo: drawing the predictions failed")
    losses = plot_metrics.plot_losses(output / "metrics.json", output / "losses.png",
                                      title=f"Mask R-CNN on {args.model} (d2timm), shapes dataset")  # fmt: skip
    print(f"loss plot: {losses}")

    bbox, segm = results.get("bbox", {}), results.get("segm", {})

    def ap(task, key="AP"):
        value = task.get(key)
        return "n/a" if value is None else f"{value:5.1f}"

    print(f"\n{'=' * 78}\nd2timm demo done in {stage.elapsed / 60:.1f} min "
          f"(training and evaluation {train_seconds / 60:.1f} min"
          + (f", {speed:.2f} iterations/s" if speed else "") + ")")  # fmt: skip
    print(f"  {args.dataset}_val ({spec.num_val} images)   AP    AP50  AP75")
    print(f"  bbox            {ap(bbox)} {ap(bbox, 'AP50')} {ap(bbox, 'AP75')}")
    print(f"  mask            {ap(segm)} {ap(segm, 'AP50')} {ap(segm, 'AP75')}")
    print("outputs:")
    for label, path in (
        ("predictions (grid)", grid), ("loss plot", losses), ("checkpoint", output / "model_final.pth"),
        ("config", output / "config.yaml"), ("metrics", output / "metrics.json"),
        ("generated package", workdir / PACKAGE), ("seeded config", config),
    ):  # fmt: skip
        print(f"  {label:<19} {path}")
    print(f"evaluate again: python tools/train_net.py --config-file {output / 'config.yaml'} --eval-only "
          f"--package {PACKAGE} --package-root {workdir} MODEL.WEIGHTS {output / 'model_final.pth'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
