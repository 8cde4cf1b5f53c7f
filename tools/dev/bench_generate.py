#!/usr/bin/env python
"""Benchmark d2timm-gen: wall time and peak memory of a generation and of a no-op rerun.

Runs ``d2timm-gen generate`` in a fresh temporary directory (so every model is
introspected), then again in the same directory (everything from the manifest cache,
nothing written), for each ``--jobs`` value, ``--repeat`` times, and prints the medians.
Peak memory is the largest sum of resident memory over the process tree (the CLI and
its introspection workers), sampled from /proc every 20 ms (Linux only). The table (and
``--json PATH``) gives the machine and versions too (tools/dev/bench_common.py).

    .venv/bin/python tools/dev/bench_generate.py '*' --jobs 1 --jobs 2 --repeat 3

(``'*'``: every architecture timm lists, as the checked-in package holds.) Targets, for
the whole catalog on a 2-core machine: a generation with ``--jobs 2`` under 5 minutes, a
no-op regeneration under 15 seconds. Other selections are reported without targets.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

if __package__ in (None, ""):  # run as a script: make `tools` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tools.dev.bench_common import ROOT, Figure, add_json_argument, below, machine_info, report, subprocess_env

CLI = [sys.executable, "-m", "generator.cli"]

#: Wall-time bounds (seconds) for the whole catalog, by figure name prefix.
CATALOG_TARGETS = {"generate --jobs 2": 300.0, "no-op regeneration": 15.0}


def _children(pid: int) -> List[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except OSError:
        return []


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _tree_rss(pid: int) -> int:
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        total += _rss_bytes(current)
        stack.extend(_children(current))
    return total


def run(args: List[str], cwd: Path) -> Tuple[float, int]:
    """Wall seconds and peak tree RSS (bytes) of one CLI run."""
    start = time.perf_counter()
    proc = subprocess.Popen(CLI + args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=subprocess_env())
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss(proc.pid))
        time.sleep(0.02)
    output = proc.stdout.read()
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"d2timm-gen {' '.join(args)} failed ({proc.returncode}):\n{output[-3000:]}")
    print("   ", output.strip().splitlines()[-1], flush=True)
    return seconds, peak


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("patterns", nargs="*", help="model name globs")
    parser.add_argument("--family", action="append", default=[], help="timm family; repeatable")
    parser.add_argument("--jobs", type=int, action="append", help="worker counts to compare (default 1 and 2)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per setting; the median is reported")
    add_json_argument(parser)
    options = parser.parse_args(argv)
    if not options.patterns and not options.family:
        parser.error("name patterns or --family")
    info = machine_info()
    selection = list(options.patterns) + [arg for f in options.family for arg in ("--family", f)]
    results: Dict[str, List[Tuple[float, int]]] = {}
    for jobs in options.jobs or [1, 2]:
        for attempt in range(options.repeat):
            with tempfile.TemporaryDirectory(prefix="d2timm-bench-") as tmp:
                print(f"--jobs {jobs}, run {attempt + 1}: fresh generation", flush=True)
                results.setdefault(f"generate --jobs {jobs}", []).append(
                    run(["generate", *selection, "--output", tmp, "--package", "bench", "--jobs", str(jobs)], ROOT)
                )
                print(f"--jobs {jobs}, run {attempt + 1}: no-op regeneration", flush=True)
                results.setdefault(f"no-op regeneration --jobs {jobs}", []).append(
                    run(["generate", "--output", tmp, "--package", "bench", "--jobs", str(jobs)], ROOT)
                )
    figures: List[Figure] = []
    whole_catalog = selection == ["*"]
    for name, values in results.items():
        wall = Figure(f"{name}: wall time", [v[0] for v in values])
        limit = next((t for prefix, t in CATALOG_TARGETS.items() if name.startswith(prefix)), None)
        if whole_catalog and limit is not None:
            wall.target, wall.passed = f"< {limit:g} s", below(wall.value, limit)
        figures.append(wall)
        figures.append(Figure(f"{name}: peak RSS", [v[1] / 2**20 for v in values], unit="MiB",
                              note="largest sum of resident memory over the process tree"))  # fmt: skip
    settings = {"selection": " ".join(selection), "jobs": options.jobs or [1, 2], "repeat": options.repeat}
    report("d2timm-gen generate", figures, info, settings=settings, json_path=options.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
