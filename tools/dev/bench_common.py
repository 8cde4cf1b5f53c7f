"""Helpers shared by the benchmark scripts (``tools/dev/bench_*.py``, ``tools/dev/benchmark_train.py``).

Every benchmark reports a list of :class:`Figure` (a median of repeated samples, its
target and whether it met it) in one table headed by a description of the machine (CPU
model, cores, load, torch/timm/detectron2 versions), and can write the same as JSON
(``--json PATH``). This module imports neither torch nor detectron2: versions are read
from the installed package metadata, so a script's ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence

__all__ = [
    "ROOT",
    "Figure",
    "add_json_argument",
    "image_size",
    "at_most",
    "below",
    "machine_info",
    "median",
    "render_table",
    "report",
    "subprocess_env",
]

ROOT = Path(__file__).resolve().parents[2]

#: Distribution names tried for each reported package (first installed one wins).
PACKAGES = {
    "torch": ("torch",),
    "timm": ("timm",),
    "detectron2": ("detectron2", "pb1-detectron2"),
}


def median(values: Iterable[float]) -> float:
    values = list(values)
    if not values:
        raise ValueError("median of no samples")
    return float(statistics.median(values))


def subprocess_env(**extra: str) -> Dict[str, str]:
    """This environment with the repository first on ``PYTHONPATH`` (``import generated``)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.update(extra)
    return env


# ----------------------------------------------------------------------------- the machine


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def package_version(name: str) -> str:
    from importlib import metadata

    for dist in PACKAGES.get(name, (name,)):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def load_average() -> Optional[List[float]]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def machine_info() -> Dict[str, Any]:
    """What the numbers were measured on; ``load_average`` tells a busy machine."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    info: Dict[str, Any] = {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "load_average": load_average(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    for name in PACKAGES:
        info[name] = package_version(name)
    info["date"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return info


def machine_lines(info: Dict[str, Any]) -> List[str]:
    load = info.get("load_average")
    load_text = "/".join(f"{x:.2f}" for x in load) if load else "n/a"
    end = info.get("load_average_end")
    if end:
        load_text += " at start, " + "/".join(f"{x:.2f}" for x in end) + " at end"
    return [
        f"machine: {info['cpu_model']}, {info['logical_cpus']} logical CPUs ({info['usable_cpus']} usable), "
        f"load average (1/5/15 min) {load_text}",
        f"software: Python {info['python']}, torch {info['torch']}, timm {info['timm']}, "
        f"detectron2 {info['detectron2']} ({info['platform']})",
    ]


# ----------------------------------------------------------------------------- figures


@dataclass
class Figure:
    """One reported number: the median of ``samples`` unless ``value`` is given."""

    name: str
    samples: List[float]
    unit: str = "s"  # "s", "ms", "x" (a ratio), "" (a count)
    target: str = ""  # human-readable, e.g. "< 0.2 s"; empty: informative only
    passed: Optional[bool] = None  # None: no target
    value: Optional[float] = None
    note: str = ""
    extra: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.samples = [float(s) for s in self.samples]
        if self.value is None:
            self.value = median(self.samples)
        self.value = float(self.value)

    @property
    def result(self) -> str:
        return "-" if self.passed is None else ("PASS" if self.passed else "FAIL")


def below(value: float, limit: float) -> bool:
    """``value < limit`` (a NaN never passes)."""
    return not math.isnan(value) and value < limit


def at_most(value: float, limit: float) -> bool:
    """``value <= limit`` (a NaN never passes)."""
    return not math.isnan(value) and value <= limit


def format_value(value: float, unit: str) -> str:
    if math.isnan(value):
        return "nan"
    if unit == "x":
        return f"{value:.3f}x"
    if unit == "s":
        return f"{value:.3f} s" if abs(value) < 100 else f"{value:.1f} s"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "%":
        return f"{value:.1f} %"
    if unit == "MiB":
        return f"{value:.0f} MiB"
    if unit == "":
        return f"{value:g}"
    return f"{value:g} {unit}"


def render_table(title: str, figures: Sequence[Figure], info: Dict[str, Any], settings: str = "") -> str:
    rows = [("figure", "median", "n", "target", "result")]
    for fig in figures:
        rows.append((fig.name, format_value(fig.value, fig.unit), str(len(fig.samples)), fig.target or "-", fig.result))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    align = ["<", ">", ">", "<", "<"]

    def line(row) -> str:
        return "  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(row, align, widths)).rstrip()

    out = [f"== {title} =="]
    out += machine_lines(info)
    if settings:
        out.append(f"settings: {settings}")
    out.append(line(rows[0]))
    out.append("  ".join("-" * w for w in widths))
    out += [line(row) for row in rows[1:]]
    notes = [f"  {fig.name}: {fig.note}" for fig in figures if fig.note]
    if notes:
        out.append("notes:")
        out += notes
    targeted = [fig for fig in figures if fig.passed is not None]
    if targeted:
        failed = [fig.name for fig in targeted if not fig.passed]
        out.append("overall: " + ("PASS" if not failed else f"FAIL ({len(failed)} of {len(targeted)} targets missed)"))
    return "\n".join(out)


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results as JSON")


def report(
    title: str,
    figures: Sequence[Figure],
    info: Dict[str, Any],
    *,
    settings: Optional[Dict[str, Any]] = None,
    json_path: Optional[Path] = None,
    stream=None,
) -> Dict[str, Any]:
    """Print the table (to ``stream``, default stdout), write ``json_path`` if given, and
    return the JSON payload."""
    info = dict(info)
    info["load_average_end"] = load_average()
    settings = dict(settings or {})
    settings_text = ", ".join(f"{k}={v}" for k, v in settings.items())
    print(render_table(title, figures, info, settings_text), file=stream or sys.stdout, flush=True)
    targeted = [fig.passed for fig in figures if fig.passed is not None]
    payload = {
        "benchmark": title,
        "machine": info,
        "settings": settings,
        "figures": [
            {
                "name": fig.name,
                "value": fig.value,
                "unit": fig.unit,
                "n": len(fig.samples),
                "samples": fig.samples,
                "target": fig.target or None,
                "passed": fig.passed,
                "note": fig.note or None,
                **({"extra": fig.extra} if fig.extra else {}),
            }
            for fig in figures
        ],
        "passed": all(targeted) if targeted else None,
    }
    if json_path is not None:
        json_path = Path(json_path)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(payload, indent=2, default=_plain) + "\n")
        print(f"wrote {json_path}", file=stream or sys.stdout)
    return payload


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    return str(value)
