"""Introspect: the only place that creates timm models.

Each architecture is created once, ``features_only``, on the meta device (no memory, no
compute), in eval mode, and probed with one forward pass at a non-square size. The
probe verifies timm's nominal reductions and detects the output layout. The result is a
:class:`~generator.spec.ModelFacts` or a one-line reason why the model cannot be used.

Models are introspected in worker processes (:func:`introspect_all`): a crash or a hang
of one model is recorded as that model's failure and the run goes on.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from concurrent.futures import as_completed
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Optional, Sequence, Tuple, Union

from .discover import ModelRef
from .spec import FeatureFacts, ModelFacts

__all__ = ["Failure", "IntrospectionError", "introspect", "introspect_all", "probe_size"]

#: Seconds one model may take before its worker is killed and it is recorded as failed.
DEFAULT_TIMEOUT = 300

#: Preferred probe input (H, W): non-square, so a transposed or mis-measured axis shows.
PROBE_TARGET = (256, 320)


class IntrospectionError(RuntimeError):
    """A model that cannot become a backbone; the message is the recorded reason."""


@dataclass(frozen=True)
class Failure:
    name: str
    family: str
    reason: str


def probe_size(reductions: Sequence[int], fixed: Optional[Tuple[int, int]]) -> Tuple[int, int]:
    """A non-square (H, W) that every nominal reduction divides, near :data:`PROBE_TARGET`."""
    if fixed is not None:
        return fixed
    step = 1
    for r in reductions:
        step = step * r // math.gcd(step, r)
    h = step * max(2, math.ceil(PROBE_TARGET[0] / step))
    w = step * max(2, math.ceil(PROBE_TARGET[1] / step))
    if w == h:
        w += step
    return h, w


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    message = text[0] if text else ""
    return f"{type(exc).__name__}: {message}"[:300]


def _module_path(net, module: str) -> str:
    """Where timm's feature module ``module`` sits inside the features_only wrapper."""
    head, _, tail = module.partition(".")
    candidates = [module, f"{head}_{tail}" if tail else module, f"model.{module}", f"body.{module}"]
    for path in candidates:
        try:
            net.get_submodule(path)
        except AttributeError:
            continue
        return path
    raise IntrospectionError(f"feature module {module!r} not found in the {type(net).__name__} wrapper")


def _layout(net) -> str:
    fmt = getattr(net, "output_fmt", None)
    if fmt is None:
        return "NCHW"
    value = getattr(fmt, "value", fmt)
    if value not in ("NCHW", "NHWC"):
        raise IntrospectionError(f"unsupported output_fmt {value!r}")
    return value


def _create(name: str, **kwargs):
    import timm
    import torch

    with torch.device("meta"):
        return timm.create_model(name, pretrained=False, features_only=True, **kwargs).eval()


def _measured_stride(level: int, size: int, out: int, nominal: int, axis: str) -> int:
    if out == math.ceil(size / nominal):
        return nominal
    if out > 0 and size % out == 0:
        return size // out
    raise IntrospectionError(
        f"level {level}: {axis} {out} at input {size} is not an integral reduction (timm says {nominal})"
    )


def introspect(name: str, family: str) -> ModelFacts:
    """Create ``name`` once on the meta device and measure it."""
    import timm
    import torch

    try:
        net = _create(name)
    except Exception as exc:  # timm raises many types here; the reason is what matters
        raise IntrospectionError(f"features_only is not supported: {_first_line(exc)}") from None
    info = net.feature_info
    levels = list(range(len(info.info)))
    if tuple(info.out_indices) != tuple(levels):
        try:
            net = _create(name, out_indices=tuple(levels))
            info = net.feature_info
        except Exception:  # some models only expose their default levels; keep those
            pass
    indices = list(info.out_indices)
    cfg = dict(getattr(net, "pretrained_cfg", None) or {})
    input_size = tuple(int(v) for v in cfg.get("input_size", (3, 224, 224)))
    fixed = bool(cfg.get("fixed_input_size", False))
    reductions = [int(info.info[i]["reduction"]) for i in indices]
    size = probe_size(reductions, tuple(input_size[1:]) if fixed else None)
    try:
        with torch.no_grad():
            outputs = net(torch.empty(1, input_size[0], *size, device="meta"))
    except Exception as exc:
        raise IntrospectionError(f"probe forward at {size[0]}x{size[1]} failed: {_first_line(exc)}") from None
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    if len(outputs) != len(indices):
        raise IntrospectionError(f"probe returned {len(outputs)} maps for {len(indices)} declared levels")
    layout = _layout(net)
    features = []
    for level, index, out in zip(range(len(indices)), indices, outputs):
        entry = info.info[index]
        if out.dim() != 4:
            raise IntrospectionError(f"level {level}: output has {out.dim()} dims, not 4")
        n, a, b, c = out.shape
        channels, h, w = (a, b, c) if layout == "NCHW" else (c, a, b)
        if channels != entry["num_chs"]:
            raise IntrospectionError(
                f"level {level}: {channels} channels in {layout} output, timm declares {entry['num_chs']}"
            )
        nominal = int(entry["reduction"])
        stride_h = _measured_stride(level, size[0], h, nominal, "height")
        stride_w = _measured_stride(level, size[1], w, nominal, "width")
        if stride_h != stride_w:
            raise IntrospectionError(f"level {level}: anisotropic stride {stride_h}x{stride_w}")
        features.append(
            FeatureFacts(
                index=int(index),
                module=entry["module"],
                path=_module_path(net, entry["module"]),
                channels=int(channels),
                reduction=nominal,
                stride=stride_h,
            )
        )
    return ModelFacts(
        name=name,
        family=family,
        timm_version=timm.__version__,
        feature_class=type(net).__name__,
        layout=layout,
        features=tuple(features),
        input_size=input_size,
        fixed_input_size=fixed,
        pixel_mean=tuple(float(v) for v in cfg.get("mean", (0.485, 0.456, 0.406))),
        pixel_std=tuple(float(v) for v in cfg.get("std", (0.229, 0.224, 0.225))),
        probe_size=size,
    )


def import_plugins(modules: Sequence[str]) -> None:
    """Import modules that register custom architectures with timm (``--import``)."""
    import importlib

    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise IntrospectionError(f"cannot import {module!r} (given with --import): {exc}") from None


def _worker_init(imports: Tuple[str, ...]) -> None:
    import warnings

    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    import timm  # noqa: F401  (imported once per worker, not once per model)

    import_plugins(imports)


def _introspect_task(name: str, family: str) -> Union[dict, str]:
    """Worker entry point: facts as a dict, or the failure reason as a string."""
    try:
        return introspect(name, family).to_dict()
    except IntrospectionError as exc:
        return str(exc)
    except Exception as exc:
        return f"introspection failed: {_first_line(exc)}"


Progress = Callable[[int, int, str, Optional[str]], None]


def _outcome(future, timeout: float) -> Union[dict, str]:
    """A finished worker task's facts dict, or the reason it failed."""
    from pebble import ProcessExpired

    try:
        return future.result()
    except FutureTimeout:
        return f"introspection timed out after {timeout:g}s"
    except ProcessExpired as exc:
        return f"worker process died (exit code {exc.exitcode})"
    except Exception as exc:
        return f"introspection failed: {_first_line(exc)}"


def introspect_all(
    refs: Iterable[ModelRef],
    jobs: int = 1,
    timeout: float = DEFAULT_TIMEOUT,
    progress: Optional[Progress] = None,
    imports: Sequence[str] = (),
) -> Tuple[Dict[str, ModelFacts], Dict[str, str]]:
    """Introspect ``refs`` in ``jobs`` worker processes.

    Returns (facts by name, failure reason by name). ``progress(done, total, name,
    reason_or_None)`` is called as each model finishes, in completion order. ``imports``
    are imported in every worker first (custom timm models).
    """
    from pebble import ProcessPool

    refs = sorted(refs)
    facts: Dict[str, ModelFacts] = {}
    failures: Dict[str, str] = {}
    if not refs:
        return facts, failures
    context = multiprocessing.get_context("spawn")
    workers = max(1, min(jobs, len(refs)))
    pool = ProcessPool(
        max_workers=workers, max_tasks=200, initializer=_worker_init, initargs=(tuple(imports),), context=context
    )
    try:
        futures = {
            pool.schedule(_introspect_task, args=(ref.name, ref.family), timeout=timeout): ref for ref in refs
        }
        for done, future in enumerate(as_completed(futures), 1):
            ref = futures[future]
            result = _outcome(future, timeout)
            if isinstance(result, dict):
                facts[ref.name] = ModelFacts.from_dict(result)
            else:
                failures[ref.name] = result
            if progress is not None:
                progress(done, len(refs), ref.name, failures.get(ref.name))
    except BaseException:  # Ctrl-C or an error: do not wait for the remaining models
        pool.stop()
        raise
    finally:
        pool.close()
        pool.join()
    return facts, failures


def default_jobs() -> int:
    return max(1, min(os.cpu_count() or 1, 8))
