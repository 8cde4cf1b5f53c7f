#!/usr/bin/env python
"""Benchmark d2timm-gen: wall time and peak memory of a generation and of a no-op rerun.

Runs ``d2timm-gen generate`` in a fresh temporary directory (so every model is
introspected), then again in the same directory (everything from the manifest cache,
nothing written), for each ``--jobs`` value, ``--repeat`` times, and prints the medians.
Peak memory is the largest sum of resident memory over the process tree (the CLI and
its introspection workers), sampled from /proc every 20 ms (Linux only).

    .venv/bin/python tools/bench_generate.py --family resnet --family convnext \\
        --family efficientnet --family regnet --family mobilenetv3 --jobs 1 --jobs 2
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

CLI = [sys.executable, "-m", "generator.cli"]
ROOT = Path(__file__).resolve().parent.parent


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
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("patterns", nargs="*", help="model name globs")
    parser.add_argument("--family", action="append", default=[], help="timm family; repeatable")
    parser.add_argument("--jobs", type=int, action="append", help="worker counts to compare (default 1 and 2)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per setting; the median is reported")
    options = parser.parse_args()
    if not options.patterns and not options.family:
        parser.error("name patterns or --family")
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
    print(f"\n{'run':<32} {'median wall s':>14} {'peak RSS MiB':>13}   (n={options.repeat}, {os.cpu_count()} CPUs)")
    for name, values in results.items():
        wall = statistics.median(v[0] for v in values)
        peak = statistics.median(v[1] for v in values) / 2**20
        print(f"{name:<32} {wall:>14.1f} {peak:>13.0f}")


if __name__ == "__main__":
    main()
