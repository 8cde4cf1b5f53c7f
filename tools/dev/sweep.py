#!/usr/bin/env python
"""Real-compute sweep of the generated catalog: every model, real tensors, forward and backward.

Meta tensors check shapes only: a model whose tables are sized when it is built (an index
past their end) passes every meta probe and fails on the first real batch. For each
generated model up to ``--max-params`` parameters this builds the FPN variant from its
emitted YAML (``configs/<family>/<model>_fpn.yaml``, as it stands) with random weights,
runs a forward and a backward pass on the CPU for a batch of two images (``--size`` and
one a little smaller: a small non-square detection-like size, each shrunk to fit the
seed's test resize where that is smaller, padded as detectron2 pads a batch; two images,
as detectron2's default of 16 images on 8 GPUs gives each, since batch norm over a 1x1
map cannot train on one; fixed-size models built at their seeds' own side, 1024 for
most, with activation checkpointing, or at ``--img-side``) and checks:

- every FPN level and every level of the plain backbone under it has the declared
  channels and ``ceil(padded / stride)`` maps, with finite values;
- gradients reach timm's stem (the first parameter of timm's model), finite and nonzero;
- the export columns (``--no-export`` skips them): the FPN variant in eval mode exported
  by tools/export.py to ONNX (static, and dynamic N, H, W), to a torch.export program
  with dynamic N, H, W, and to TorchScript (traced), each loaded back and equal to eager
  within 1e-4 relative on the first image's size and, dynamic, on a batch of two at a
  size that is not a multiple of 32 (fixed-size models: n/a).

``--shard K/N`` runs every N-th model from the K-th (by name), so that N jobs share the
catalog (the weekly workflow runs four); ``d2timm-gen generate --verified`` takes each
shard's results file.

Each model runs in a worker process (``--jobs``); one that crashes its worker or runs
past ``--timeout`` is recorded as failed with that reason, and the sweep goes on. Results
go to ``--results`` (JSON) as each model finishes, so an interrupted sweep resumes where
it stopped (``--rerun`` runs recorded models again). Each entry::

    {"status": "verified" | "failed" | "not run", "reason": "...", "seconds": 1.2,
     "params": 11689512, "peak_rss_mib": 812, "timm": "1.0.31",
     "export": {"onnx": {"status": "ok" | "failed" | "n/a", "reason": "..."}, ...}}

Publish the results in the support matrix with ``d2timm-gen generate --verified
RESULTS`` (``make sweep`` does both): ``generated/SUPPORT.md`` gets a real-compute column.

    .venv/bin/python tools/dev/sweep.py --sample --jobs 2          # one model per family (what CI runs)
    .venv/bin/python tools/dev/sweep.py --jobs 2                   # the catalog, resumable
    .venv/bin/python tools/dev/sweep.py 'levit*' 'cait*' --rerun   # some models again
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import signal
import sys
import time
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures import as_completed
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

if __package__ in (None, ""):  # run as a script: make `tools` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from generator.render import EXPORT_COLUMNS, export_tallies
from tools.args import image_size, script_parser
from tools.dev.bench_common import ROOT

VERIFIED, FAILED, NOT_RUN = "verified", "failed", "not run"
#: Features-model parameters above which a model is not run: a forward and backward at
#: its size take minutes and gigabytes each on a 2-core, 24 GiB machine.
DEFAULT_MAX_PARAMS = 100_000_000
DEFAULT_SIZE = (256, 352)
#: ``--img-side`` 0: fixed-size models are built at their seeds' own side (their module's
#: IMG_SIZE, 1024 or the first multiple of their step from it), as a user trains them. A
#: positive side builds them at the first multiple of their step from it instead: tables
#: sized at build time for any side but the pretrained one fail at 448 as at 1024, at a
#: fraction of the time (cait_xxs24_224 on a CPU core: 325 s at 1024, 26 s at 448); the
#: tests' real-tensor samples do that.
DEFAULT_IMG_SIDE = 0
#: Fixed-size models built above this side train with activation checkpointing (global
#: attention over a 64x64 grid holds tens of GiB of activations for a backward pass);
#: 448, rounded up to any model's step (480 for crossvit's 240), stays below.
CHECKPOINT_ABOVE_SIDE = 512
DEFAULT_TIMEOUT = 900
#: tools/export.py's --format and --dynamic for each export column of SUPPORT.md.
EXPORT_ARGS = {
    "onnx": ("onnx", False),
    "onnx dynamic": ("onnx", True),
    "torch.export dynamic": ("exported-program", True),
    "torchscript": ("torchscript", False),
}
EXPORTS = tuple((column, *EXPORT_ARGS[column]) for column in EXPORT_COLUMNS)
EXPORT_SUFFIXES = {"onnx": ".onnx", "exported-program": ".pt2", "torchscript": ".ts"}
EXPORT_OK, EXPORT_NA = "ok", "n/a"
DEFAULT_RESULTS = ROOT / ".cache" / "sweep" / "results.json"
#: Models a worker runs before it is replaced (memory of large models is returned then).
MAX_TASKS_PER_WORKER = 25


# ------------------------------------------------------------------ one model, in a worker


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def smaller(size: Tuple[int, int]) -> Tuple[int, int]:
    """The second image of the batch: about 7/8 of the first, so the batch is padded."""
    return tuple(max(1, side * 7 // 8) for side in size)


def fit_to_seed(cfg, size: Tuple[int, int], built_side: int = 0) -> Tuple[int, int]:
    """``size`` shrunk (never enlarged) to the seed's test resize: its shortest side at most
    INPUT.MIN_SIZE_TEST, its longest at most INPUT.MAX_SIZE_TEST and, for a fixed-size
    model, at most the side it was built at (a fixed-size model that stays at 224, or one
    built smaller than its seed says, gets an image it can take)."""
    longest = min(cfg.INPUT.MAX_SIZE_TEST, built_side or cfg.INPUT.MAX_SIZE_TEST)
    scale = min(1.0, cfg.INPUT.MIN_SIZE_TEST / min(size), longest / max(size))
    return tuple(max(1, int(side * scale + 0.5)) for side in size)


def build_fpn(model: str, family: str, package_root: str = str(ROOT), overrides: Sequence[str] = ()):
    """``(cfg, backbone)``: ``model``'s FPN variant from its seed
    ``configs/<family>/<model>_fpn.yaml`` with config ``overrides`` (KEY VALUE), random
    weights (seed 0), in training mode."""
    import torch
    from detectron2.config import get_cfg
    from detectron2.modeling import build_backbone

    if package_root not in sys.path:
        sys.path.insert(0, package_root)
    import generated

    cfg = get_cfg()
    generated.add_timm_config(cfg)
    cfg.merge_from_file(str(Path(package_root) / "configs" / family / f"{model}_fpn.yaml"))
    cfg.merge_from_list(list(overrides))
    generated.ensure_registered(cfg)
    torch.manual_seed(0)
    return cfg, build_backbone(cfg).train()


def verify(
    model: str,
    family: str,
    size: Tuple[int, int],
    package_root: str = str(ROOT),
    overrides: Sequence[str] = (),
    exports: bool = False,
) -> Dict[str, object]:
    """Build ``model``'s FPN variant from its seed (with config ``overrides``, KEY VALUE),
    forward and backward at ``size``; then, with ``exports``, the export columns
    (:func:`check_exports`) on the first image's size."""
    import torch
    from detectron2.structures import ImageList

    cfg, fpn = build_fpn(model, family, package_root, overrides)
    plain = fpn.bottom_up
    generator = torch.Generator().manual_seed(0)
    images = [torch.randn(3, *fit_to_seed(cfg, side, plain.img_size), generator=generator) for side in (size, smaller(size))]
    batch = ImageList.from_tensors(images, fpn.size_divisibility).tensor
    height, width = batch.shape[-2:]
    captured: Dict[str, torch.Tensor] = {}
    hook = plain.register_forward_hook(lambda module, args, output: captured.update(output))
    try:
        maps = fpn(batch)
    finally:
        hook.remove()
    problems = []
    for label, outputs, shapes in (("FPN", maps, fpn.output_shape()), ("plain", captured, plain.output_shape())):
        for name, shape in shapes.items():
            expected = (2, shape.channels, math.ceil(height / shape.stride), math.ceil(width / shape.stride))
            got = outputs.get(name)
            if got is None or tuple(got.shape) != expected:
                problems.append(f"{label} {name}: {None if got is None else tuple(got.shape)}, declared {expected}")
            elif not torch.isfinite(got).all():
                problems.append(f"{label} {name}: not finite")
    if problems:
        raise AssertionError("; ".join(problems))
    sum(m.float().mean() for m in maps.values()).backward()
    stem_name, stem = next((n, p) for n, p in plain.body.named_parameters() if p.requires_grad)
    if not _usable(stem.grad):
        cause = "" if stem.grad is None or torch.isfinite(stem.grad).all() else _nonfinite_cause(fpn, batch, stem)
        raise AssertionError(f"no finite nonzero gradient reaches the stem ({stem_name}){cause}")
    detail = {"input": f"{height}x{width}", "stem": stem_name}
    if exports:
        detail["export"] = check_exports(fpn, tuple(images[0].shape[-2:]))
    return detail


def check_exports(fpn, size: Tuple[int, int]) -> Dict[str, Dict[str, str]]:
    """Each of :data:`EXPORTS` of ``fpn`` (in eval mode) through tools/export.py's own
    export-and-check: written, loaded back and compared with eager on ``size`` (rounded up
    to the size divisibility; fixed-size models at their built size) and, dynamic, on a
    batch of two at a size that is not a multiple of 32. Per column: ``{"status": "ok" |
    "failed" | "n/a", "reason": ...}``."""
    import tempfile

    from tools import export

    module = export.Levels(fpn).eval()
    any_size = not export.bottom_up(fpn).FIXED_INPUT_SIZE
    columns: Dict[str, Dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for column, fmt, dynamic in EXPORTS:
            if dynamic and not any_size:
                columns[column] = {"status": EXPORT_NA, "reason": "built at one input size"}
                continue
            output = os.path.join(tmp, column.replace(" ", "_") + EXPORT_SUFFIXES[fmt])
            start = time.perf_counter()
            try:
                checked = export.export_and_check(module, size, fmt, output, dynamic)
                worst = max(relative for _, diffs in checked for _, relative in diffs.values())
                columns[column] = (
                    {"status": EXPORT_OK, "reason": ""}
                    if worst <= export.DEFAULT_RTOL
                    else {"status": FAILED, "reason": f"differs from eager by {worst:.1e} relative (> {export.DEFAULT_RTOL:g})"}
                )
            except export.ExportError as exc:
                columns[column] = {"status": FAILED, "reason": " ".join(str(exc).replace(output, "the file").split())[:300]}
            columns[column]["seconds"] = round(time.perf_counter() - start, 1)
    return columns


def _usable(grad) -> bool:
    import torch

    return grad is not None and bool(torch.isfinite(grad).all()) and bool(grad.abs().sum() > 0)


def _nonfinite_cause(fpn, batch, stem) -> str:
    """Why the stem's gradient is not finite, where the sweep can tell: the same batch
    again with every bias drawn from N(0, 0.02), as trained weights have nonzero biases."""
    import torch

    generator = torch.Generator().manual_seed(0)
    fpn.zero_grad(set_to_none=True)
    with torch.no_grad():
        for name, param in fpn.named_parameters():
            if name.endswith("bias"):
                param.copy_(torch.randn(param.shape, generator=generator) * 0.02)
    sum(m.float().mean() for m in fpn(batch).values()).backward()
    if not _usable(stem.grad):
        return ""
    return ("; it is finite with nonzero biases: timm initialises biases to zero, so the zero padding of the batch stays "
            "exactly zero through the network, and a normalisation over a region of variance 0 scales its gradient "
            "by 1/sqrt(eps); trained weights, with nonzero biases, do not")  # fmt: skip


def _task(
    model: str, family: str, size: Tuple[int, int], package_root: str, overrides: Sequence[str] = (), exports: bool = False
) -> Dict[str, object]:
    import warnings

    warnings.filterwarnings("ignore")
    start = time.perf_counter()
    try:
        detail = verify(model, family, size, package_root, overrides, exports)
        entry = {"status": VERIFIED, "reason": "", **detail}
    except Exception as exc:
        text = " ".join(str(exc).split())[:400]
        entry = {"status": FAILED, "reason": f"{type(exc).__name__}: {text}"}
    entry.update(seconds=round(time.perf_counter() - start, 1), peak_rss_mib=round(_peak_rss_mib()))
    return entry


def build_overrides(model: Model, side: int = DEFAULT_IMG_SIDE) -> Tuple[str, ...]:
    """Config overrides (KEY VALUE) that build a fixed-size ``model`` at its seeds' side
    (``side`` 0) or at the first multiple of its step from ``side``, with activation
    checkpointing above :data:`CHECKPOINT_ABOVE_SIDE`; none for a model of any input size."""
    step = model.img_size_multiple
    if not step:
        return ()
    built = model.img_size if side == 0 else step * -(-side // step)
    checkpoint = ("MODEL.BACKBONE.CONFIG.ACTIVATION_CHECKPOINT", "True") if built > CHECKPOINT_ABOVE_SIDE else ()
    return ("MODEL.BACKBONE.CONFIG.IMG_SIZE", str(built), *checkpoint)


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


# ------------------------------------------------------------------ the sweep


class Model(NamedTuple):
    name: str
    family: str
    params: int
    #: IMG_SIZE's step for a fixed-size model timm builds at other sizes, else 0
    img_size_multiple: int
    #: the side its seeds build it at (IMG_SIZE), else 0
    img_size: int = 0


def catalog(manifest: dict) -> List[Model]:
    """Every generated model, by name."""
    models = []
    for name, spec in manifest["models"].items():
        facts = spec["facts"]
        models.append(Model(name, facts["family"], int(facts.get("params", 0)), int(facts.get("img_size_multiple", 0)),
                            int(facts.get("img_size", 0))))  # fmt: skip
    return sorted(models)


def family_sample(models: Sequence[Model]) -> List[Model]:
    """The smallest model of each family (one whose models are all above the parameter
    bound still gets its smallest, so that it is named as not run)."""
    best: Dict[str, Model] = {}
    for model in models:
        if model.family not in best or (model.params, model.name) < (best[model.family].params, best[model.family].name):
            best[model.family] = model
    return sorted(best.values())


def read_results(path: Path) -> Dict[str, dict]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UsageError(f"--results {path}: not valid JSON ({exc}); move it away to start a new sweep") from None
    return dict(data.get("models", {}))


def write_results(path: Path, results: Dict[str, dict], settings: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    payload = {"settings": settings, "models": dict(sorted(results.items()))}
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def sweep(
    todo: Sequence[Model],
    results: Dict[str, dict],
    *,
    size: Tuple[int, int],
    img_side: int,
    jobs: int,
    timeout: float,
    max_params: int,
    timm_version: str,
    save,
    package_root: str = str(ROOT),
    exports: bool = False,
) -> Dict[str, dict]:
    """Run ``todo`` (models above ``max_params`` recorded as not run); ``save(results)``
    after each model."""
    from pebble import ProcessExpired, ProcessPool

    runnable = []
    for model in todo:
        if model.params > max_params:
            results[model.name] = {"status": NOT_RUN, "reason": f"{model.params / 1e6:.0f}M parameters, above the "
                                   f"bound of {max_params / 1e6:.0f}M", "params": model.params, "timm": timm_version}  # fmt: skip
        else:
            runnable.append(model)
    save(results)
    if not runnable:
        return results
    import multiprocessing

    pool = ProcessPool(max_workers=max(1, min(jobs, len(runnable))), max_tasks=MAX_TASKS_PER_WORKER,
                       initializer=_worker_init, context=multiprocessing.get_context("spawn"))  # fmt: skip
    width = len(str(len(runnable)))
    try:
        futures = {
            pool.schedule(_task, args=(m.name, m.family, size, package_root, build_overrides(m, img_side),
                                       exports), timeout=timeout): m
            for m in runnable
        }  # fmt: skip
        for done, future in enumerate(as_completed(futures), 1):
            model = futures[future]
            try:
                entry = future.result()
            except FutureTimeout:
                entry = {"status": FAILED, "reason": f"timed out after {timeout:g}s"}
            except ProcessExpired as exc:
                entry = {"status": FAILED, "reason": f"worker process died (exit code {exc.exitcode}; out of memory?)"}
            entry.update(params=model.params, timm=timm_version)
            if model.img_size_multiple:
                entry["img_size"] = int(build_overrides(model, img_side)[1])
            results[model.name] = entry
            save(results)
            reason = f": {entry['reason']}" if entry["status"] != VERIFIED else ""
            failed_exports = [column for column, cell in entry.get("export", {}).items() if cell["status"] == FAILED]
            if failed_exports:
                reason += f"; export fails: {', '.join(failed_exports)}"
            print(f"[{done:>{width}}/{len(runnable)}] {model.name} {entry['status']} ({entry.get('seconds', '-')}s){reason}",
                  flush=True)  # fmt: skip
    except BaseException:
        pool.stop()
        raise
    finally:
        pool.close()
        pool.join()
    return results


def summary(results: Dict[str, dict], manifest: dict) -> str:
    families: Dict[str, List[int]] = {}
    for name, spec in manifest["models"].items():
        row = families.setdefault(spec["facts"]["family"], [0, 0, 0])
        entry = results.get(name, {})
        row[0] += entry.get("status") == VERIFIED
        row[1] += entry.get("status") in (VERIFIED, FAILED)
        row[2] += 1
    totals = [sum(row[i] for row in families.values()) for i in range(3)]
    lines = [f"verified / run / catalog: {totals[0]} / {totals[1]} / {totals[2]}"]
    failed = sorted(name for name, entry in results.items() if entry.get("status") == FAILED)
    lines += [f"  failed {name}: {results[name]['reason']}" for name in failed]
    lines += export_summary(results)
    peak = max((entry.get("peak_rss_mib", 0) for entry in results.values()), default=0)
    seconds = sum(entry.get("seconds", 0) for entry in results.values())
    lines.append(f"model seconds (summed over workers): {seconds:.0f}; peak worker memory {peak:.0f} MiB")
    return "\n".join(lines)


def export_summary(results: Dict[str, dict]) -> List[str]:
    """Per export column: ok of exported (n/a: built at one size); the failures grouped by
    reason, most frequent first (SUPPORT.md's grouping)."""
    tallies, groups = export_tallies(results)
    lines = [f"export {column}: {ok} / {exported} ok" + (f" ({na} n/a: one input size)" if na else "")
             for column, (ok, exported, na) in tallies.items()]  # fmt: skip
    for kind, cases in groups:
        lines.append(f"  {len(cases)} x {kind[:160]}: {', '.join(cases[:6])}{' ...' if len(cases) > 6 else ''}")
    return lines


def shard(text: str) -> Tuple[int, int]:
    """``K/N`` with 1 <= K <= N, for ``--shard``."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not K/N (such as 2/4)") from None
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"{text!r}: K must be from 1 to N")
    return k, n


def argument_parser() -> argparse.ArgumentParser:
    parser = script_parser(__doc__)
    parser.add_argument("patterns", nargs="*", help="model name globs (default: the whole package)")
    parser.add_argument("--sample", action="store_true", help="only the smallest model of each family")
    parser.add_argument("--shard", type=shard, default=(1, 1), metavar="K/N",
                        help="only the K-th of N shards of the models (every N-th by name, from the K-th): "
                             "parallel jobs, each with its own --results (default 1/1)")  # fmt: skip
    parser.add_argument("--max-params", type=int, default=DEFAULT_MAX_PARAMS,
                        help="models with more parameters are recorded as not run (default %(default)s)")  # fmt: skip
    parser.add_argument("--size", type=image_size, default=DEFAULT_SIZE, metavar="HxW",
                        help="image size before detectron2's padding (default 256x352)")  # fmt: skip
    parser.add_argument("--img-side", type=int, default=DEFAULT_IMG_SIDE, metavar="SIDE",
                        help="fixed-size models are built at the first valid side from SIDE; 0 (default): at their seeds' own "
                             "side, IMG_SIZE")  # fmt: skip
    parser.add_argument("--jobs", "-j", type=int, default=1, help="worker processes (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per model (default %(default)s)")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="results JSON (default %(default)s)")
    parser.add_argument("--rerun", action="store_true", help="run models already in the results again")
    parser.add_argument("--package-root", type=Path, default=ROOT, help="directory holding generated/ and configs/")
    parser.add_argument("--export", action=argparse.BooleanOptionalAction, default=True,
                        help="the export columns: ONNX static and dynamic, torch.export dynamic, TorchScript (default: on)")  # fmt: skip
    return parser


class UsageError(Exception):
    """A bad argument or input file: ``error: ...`` on stderr, exit status 2."""


def _terminated(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds through sweep(), which stops its workers


def main(argv: Optional[Sequence[str]] = None) -> int:
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        return run(argument_parser().parse_args(argv))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(args: argparse.Namespace) -> int:
    if args.jobs < 1 or args.timeout <= 0 or args.max_params < 0 or args.img_side < 0:
        raise UsageError(f"--jobs {args.jobs}, --timeout {args.timeout:g}, --max-params {args.max_params}, "
                         f"--img-side {args.img_side}: --jobs must be at least 1, --timeout positive, "
                         "--max-params and --img-side at least 0")  # fmt: skip
    manifest_path = args.package_root / "generated" / "MANIFEST.json"
    if not manifest_path.is_file():
        raise UsageError(f"no generated package at {args.package_root} (no generated/MANIFEST.json)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    models = catalog(manifest)
    if args.patterns:
        models = [m for m in models if any(fnmatch.fnmatchcase(m.name, p) for p in args.patterns)]
        if not models:
            raise UsageError(f"no generated model matches {' '.join(args.patterns)}; `d2timm-gen list` shows timm's")
    if args.sample:
        models = family_sample(models)
    k, n = args.shard
    models = models[k - 1 :: n]
    results = read_results(args.results)
    todo = [m for m in models if args.rerun or m.name not in results]
    timm_version = manifest["versions"]["timm"]
    settings = {"size": f"{args.size[0]}x{args.size[1]}", "img_side": args.img_side, "max_params": args.max_params,
                "timm": timm_version, "export": args.export, "shard": f"{k}/{n}"}  # fmt: skip
    print(f"sweep: {len(todo)} of {len(models)} models to run ({len(models) - len(todo)} already in {args.results}); "
          f"{args.jobs} worker(s), {args.timeout:g}s each, bound {args.max_params / 1e6:.0f}M parameters", flush=True)  # fmt: skip
    start = time.perf_counter()
    sweep(todo, results, size=args.size, img_side=args.img_side, jobs=args.jobs, timeout=args.timeout, max_params=args.max_params,
          timm_version=timm_version, save=lambda r: write_results(args.results, r, settings),
          package_root=str(args.package_root), exports=args.export)  # fmt: skip
    print(summary({m.name: results[m.name] for m in models if m.name in results},
                  {"models": {m.name: manifest["models"][m.name] for m in models}}))  # fmt: skip
    print(f"wall time {time.perf_counter() - start:.0f}s; results in {args.results}")
    failed = [m.name for m in models if results.get(m.name, {}).get("status") == FAILED]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
