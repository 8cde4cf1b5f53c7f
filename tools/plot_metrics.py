#!/usr/bin/env python
"""Plot the training losses (and learning rate) from detectron2's metrics.json.

    python tools/plot_metrics.py out/r18/metrics.json --output out/r18/losses.png

metrics.json holds one JSON object per line, written by detectron2's JSONWriter every
20 iterations (plus evaluation results at the end). Every key starting with ``loss`` is
drawn against ``iteration``; ``total_loss`` is bold. Uses matplotlib's Agg backend (no
display needed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = ["read_metrics", "loss_series", "plot_losses", "main"]


def read_metrics(path: Path) -> List[dict]:
    records = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            records.append(json.loads(line))
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: not JSON: {exc}") from exc
    return records


def loss_series(records: Sequence[dict]) -> Dict[str, Tuple[List[int], List[float]]]:
    """{name: (iterations, values)} of every loss key, plus ``lr``."""
    series: Dict[str, Tuple[List[int], List[float]]] = {}
    for record in records:
        if "iteration" not in record:
            continue
        for key, value in record.items():
            if (key.startswith("loss") or key in ("total_loss", "lr")) and isinstance(value, (int, float)):
                xs, ys = series.setdefault(key, ([], []))
                xs.append(int(record["iteration"]) + 1)
                ys.append(float(value))
    return series


def plot_losses(metrics: Path, output: Path, title: Optional[str] = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = loss_series(read_metrics(metrics))
    losses = {k: v for k, v in series.items() if k != "lr"}
    if not losses:
        raise ValueError(f"{metrics}: no loss values (has training run for at least 20 iterations?)")
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(8, 6.5), sharex=True, gridspec_kw=dict(height_ratios=[3, 1])
    )
    for name in sorted(losses, key=lambda k: (k != "total_loss", k)):
        xs, ys = losses[name]
        top.plot(xs, ys, label=name, linewidth=2.4 if name == "total_loss" else 1.2, marker="." if len(xs) < 30 else None)
    top.set_ylabel("loss (median over the logging window)")
    top.set_yscale("log")
    top.grid(True, which="both", alpha=0.3)
    top.legend(fontsize=8, ncol=2)
    top.set_title(title or f"training losses: {metrics}")
    if "lr" in series:
        bottom.plot(*series["lr"], color="gray")
    bottom.set_ylabel("learning rate")
    bottom.set_xlabel("iteration")
    bottom.grid(True, alpha=0.3)
    figure.tight_layout()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=110)
    plt.close(figure)
    return output


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("metrics", type=Path, help="metrics.json of a training run")
    parser.add_argument("--output", "-o", type=Path, default=None, help="PNG to write (default: losses.png beside it)")
    parser.add_argument("--title", default=None)
    args = parser.parse_args(argv)
    output = args.output or args.metrics.with_name("losses.png")
    try:
        print(plot_losses(args.metrics, output, args.title))
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
