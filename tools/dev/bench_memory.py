#!/usr/bin/env python
"""Memory of one Mask R-CNN training step at detection resolution, with and without activation checkpointing.

    python tools/dev/bench_memory.py                                  # the five models of issue 15
    python tools/dev/bench_memory.py --models vit_base_patch16_224 --side 1024

For each model and each setting of ``MODEL.BACKBONE.CONFIG.ACTIVATION_CHECKPOINT``, a
fresh process builds detectron2's Mask R-CNN from the model's FPN seed on the CPU (one
thread, random weights), and runs one training step (forward, backward) on one
``--side`` x ``--side`` image with two instances. It reports the peak resident memory of
that process (``ru_maxrss``: the whole process, model and framework included) and the
step's wall time. A run that exceeds ``--limit-gb`` of address space is reported as such.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tools.args import script_parser  # noqa: E402
from tools.dev.bench_common import add_json_argument, machine_info  # noqa: E402

MODELS = (
    "vit_base_patch16_224",
    "beit_base_patch16_224",
    "swin_base_patch4_window7_224",
    "convnext_base",
    "eva02_base_patch14_224",
)

#: The child: one training step, then its peak RSS and time as JSON on the last line.
STEP = r"""
import json, resource, sys, time
import torch
from detectron2.modeling import build_model
from detectron2.structures import BitMasks, Boxes, Instances
from detectron2.utils.events import EventStorage
from tests.helpers import model_config, repo_models

model, side, checkpoint = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
family = dict(repo_models())[model]
cfg = model_config(model, family, overrides=[
    "MODEL.DEVICE", "cpu", "MODEL.BACKBONE.CONFIG.ACTIVATION_CHECKPOINT", str(checkpoint),
    "INPUT.MAX_SIZE_TRAIN", str(side), "MODEL.ROI_HEADS.NUM_CLASSES", "3",
])
torch.manual_seed(0)
net = build_model(cfg).train()
masks = torch.zeros(2, side, side, dtype=torch.bool)
masks[0, 100:400, 100:500] = True
masks[1, 500:900, 300:800] = True
boxes = Boxes(torch.tensor([[100.0, 100.0, 500.0, 400.0], [300.0, 500.0, 800.0, 900.0]]))
item = {"image": torch.rand(3, side, side) * 255, "height": side, "width": side,
        "instances": Instances((side, side), gt_boxes=boxes, gt_classes=torch.tensor([0, 1]), gt_masks=BitMasks(masks))}
start = time.perf_counter()
with EventStorage():
    losses = net([item])
sum(losses.values()).backward()
seconds = time.perf_counter() - start
print(json.dumps({"peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "seconds": seconds,
                  "blocks": net.backbone.bottom_up.checkpointed_blocks}))
"""


def measure(model: str, side: int, checkpoint: bool, limit_gb: float, timeout: float) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT))
    limit = f"ulimit -v {int(limit_gb * 2**20)}; " if limit_gb else ""
    command = f'{limit}exec "{sys.executable}" -c "$STEP" {model} {side} {int(checkpoint)}'
    try:
        done = subprocess.run(
            ["bash", "-c", command], env={**env, "STEP": STEP}, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT
        )
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {tail[:160]}"}
    return json.loads(lines[-1])


def main(argv=None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--side", type=int, default=1024)
    parser.add_argument("--settings", nargs="+", choices=("on", "off"), default=["on", "off"], help="checkpointing")
    parser.add_argument("--limit-gb", type=float, default=20.0, help="address-space limit of each run (0: none)")
    parser.add_argument("--timeout", type=float, default=1800)
    add_json_argument(parser)
    args = parser.parse_args(argv)
    print(json.dumps(machine_info(), sort_keys=True))
    print(f"one Mask R-CNN training step at {args.side}x{args.side}, batch 1, CPU, 1 thread")
    print(f"{'model':<32} {'checkpointing':<14} {'peak RSS':>9} {'step':>8} blocks")
    results = []
    for model in args.models:
        for setting in args.settings:
            result = measure(model, args.side, setting == "on", args.limit_gb, args.timeout)
            results.append({"model": model, "checkpointing": setting, **result})
            if "error" in result:
                print(f"{model:<32} {setting:<14} {result['error']}", flush=True)
            else:
                print(f"{model:<32} {setting:<14} {result['peak_gb']:>7.2f} GB {result['seconds']:>6.1f} s {result['blocks']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
