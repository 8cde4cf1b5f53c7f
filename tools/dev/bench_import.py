#!/usr/bin/env python
"""Import cost of the generated package: one backbone on demand against all of them.

Each sample is a fresh Python process that imports ``detectron2.modeling`` and ``timm``
(the baseline every user pays) and then, depending on the mode:

- ``baseline``: nothing more;
- ``lazy``: ``import generated``, ``generated.ensure_registered(BUILDER)`` and resolves
  the builder from detectron2's ``BACKBONE_REGISTRY`` and the backbone class (what
  ``tools/train_net.py`` does for a config that names one generated backbone);
- ``eager``: ``import generated`` and imports every model module, registering every
  builder at import time as dynamic timm wrappers do, then resolves the same builder.

The modes run in rotating order in each repeat, so a busy machine slows them alike.
Reported: the time spent after the baseline imports, measured inside each process (the
headline figure; target < 0.2 s for ``lazy``), the same cost as the difference of the
median wall times of whole processes (``lazy`` minus ``baseline``: interpreter start and
exit included, but noisy, since the baseline takes seconds; informative, no target), the
``eager`` cost and the eager/lazy ratio.

    .venv/bin/python tools/dev/bench_import.py                     # resnet50, 7 repeats
    .venv/bin/python tools/dev/bench_import.py --model convnext_tiny --repeat 11 --json out/import.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

if __package__ in (None, ""):  # run as a script: make `tools` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tools.args import script_parser
from tools.dev.bench_common import ROOT, Figure, add_json_argument, below, machine_info, median, report, subprocess_env

TARGET_S = 0.2
MODES = ("baseline", "lazy", "eager")
MARKER = "D2TIMM_BENCH_IMPORT "

#: Runs in the fresh process: python -c PROBE MODE MODEL.
PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import detectron2.modeling, timm
t1 = time.perf_counter()
mode, model = sys.argv[1], sys.argv[2]
builder = f"build_{model}_fpn_backbone"
result = {"mode": mode}
if mode != "baseline":
    import generated
    from detectron2.modeling import BACKBONE_REGISTRY
    if mode == "lazy":
        assert generated.ensure_registered(builder), builder
    else:
        for name in generated.MODELS:
            generated.model_module(name)
    fn = BACKBONE_REGISTRY.get(builder)
    module = generated.model_module(model)
    classes = [getattr(module, n) for n in getattr(module, "__all__", ()) if isinstance(getattr(module, n), type)]
    cls = getattr(generated, classes[0].__name__)
    assert fn is getattr(generated, builder) and callable(fn) and isinstance(cls, type)
    t2 = time.perf_counter()
    result["class"] = cls.__name__
    result["registered"] = sum(1 for name in generated.BUILDERS if name in BACKBONE_REGISTRY)
    result["model_modules"] = sum(
        1 for name in generated.MODELS if f"{generated.__name__}.{generated.MODELS[name]}" in sys.modules
    )
    result["models"] = len(generated.MODELS)
else:
    t2 = time.perf_counter()
result["baseline_s"] = t1 - t0
result["extra_s"] = t2 - t1
print("D2TIMM_BENCH_IMPORT " + json.dumps(result), flush=True)
"""


def run_probe(mode: str, model: str, python: str = sys.executable) -> Dict[str, float]:
    """One fresh process; its in-process timings plus ``wall_s`` seen from here."""
    start = time.perf_counter()
    proc = subprocess.run(
        [python, "-c", PROBE, mode, model], cwd=str(ROOT), env=subprocess_env(), capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARKER)]
    if proc.returncode != 0 or not lines:
        sys.exit(f"import probe ({mode}, {model}) failed with exit code {proc.returncode}:\n"
                 f"{proc.stdout}\n{proc.stderr[-4000:]}")  # fmt: skip
    result = json.loads(lines[-1][len(MARKER):])
    result["wall_s"] = wall
    return result


def argument_parser() -> argparse.ArgumentParser:
    parser = script_parser(__doc__)
    parser.add_argument("--model", default="resnet50", help="generated model to resolve (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=7,
                        help="processes per mode; medians are reported (default %(default)s)")  # fmt: skip
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed processes per mode first (bytecode caches, OS file cache; "
                        "default %(default)s)")  # fmt: skip
    add_json_argument(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = argument_parser().parse_args(argv)
    if args.repeat < 1:
        sys.exit("--repeat must be at least 1")
    info = machine_info()
    builder = f"build_{args.model}_fpn_backbone"
    print(f"import benchmark: {builder}, {args.repeat} processes per mode after {args.warmup} warm-up", flush=True)
    for _ in range(args.warmup):
        for mode in MODES:
            run_probe(mode, args.model)
    samples: Dict[str, List[Dict[str, float]]] = {mode: [] for mode in MODES}
    for attempt in range(args.repeat):
        shift = attempt % len(MODES)
        for mode in MODES[shift:] + MODES[:shift]:
            samples[mode].append(run_probe(mode, args.model))
    lazy, eager = samples["lazy"], samples["eager"]

    def column(mode: str, key: str) -> List[float]:
        return [s[key] for s in samples[mode]]

    lazy_extra, eager_extra = median(column("lazy", "extra_s")), median(column("eager", "extra_s"))
    wall_difference = median(column("lazy", "wall_s")) - median(column("baseline", "wall_s"))
    eager_wall_difference = median(column("eager", "wall_s")) - median(column("baseline", "wall_s"))
    figures = [
        Figure("baseline: import detectron2.modeling, timm", column("baseline", "baseline_s"),
               note="in-process, in the baseline processes"),  # fmt: skip
        Figure(f"lazy: + import generated, resolve {builder} and {lazy[0]['class']}", column("lazy", "extra_s"),
               target=f"< {TARGET_S} s", passed=below(lazy_extra, TARGET_S),
               note=f"time after the baseline imports, in-process; {lazy[0]['model_modules']} of {lazy[0]['models']} "
               f"model modules imported, {lazy[0]['registered']} builders registered"),  # fmt: skip
        Figure("lazy: process wall time minus baseline's", column("lazy", "wall_s"), value=wall_difference,
               note="difference of the median wall times of whole processes (interpreter start and exit included; "
               "the samples are the lazy processes' wall times): the same cost, seen through the noise of a "
               "several-second baseline"),  # fmt: skip
        Figure(f"eager: + import generated and all {eager[0]['models']} model modules", column("eager", "extra_s"),
               note=f"time after the baseline imports, in-process; {eager[0]['registered']} builders registered, as "
               f"dynamic wrappers register everything at import; process wall time minus baseline's: "
               f"{eager_wall_difference:.3f} s"),  # fmt: skip
        Figure("eager / lazy", [e / l for e, l in zip(column("eager", "extra_s"), column("lazy", "extra_s"))],
               unit="x", value=eager_extra / lazy_extra if lazy_extra > 0 else float("nan"),
               note="ratio of the two medians; the samples are per-repeat ratios"),  # fmt: skip
    ]
    settings = {"model": args.model, "repeat": args.repeat, "warmup": args.warmup, "python": sys.executable}
    report("import cost of the generated package", figures, info, settings=settings, json_path=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
