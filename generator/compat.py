"""Which timm releases the generator supports, and the shims older 1.0.x releases need.

Supported: timm ``>=1.0,<2`` (checked with 1.0.3, the oldest 1.0.x on PyPI, through
1.0.31). ``d2timm-gen`` refuses to run under anything else (exit 2, see
:func:`unsupported_timm`): 0.x has other ``features_only`` wrappers and model names, and
a new major release is untested. ``D2TIMM_ANY_TIMM=1`` runs anyway (with a warning), to
see how far an untested release gets.

Nothing here imports timm: the installed version is read from its source, so the check
costs nothing for commands that never create a model.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
from pathlib import Path
from typing import Iterator, Optional, Tuple

__all__ = [
    "ANY_TIMM_ENV",
    "SUPPORTED_TIMM",
    "installed_timm_version",
    "meta_device",
    "skip_meta_init",
    "timm_gate",
    "timm_is_supported",
    "unsupported_timm",
]

#: The supported range, as pip writes it.
SUPPORTED_TIMM = ">=1.0,<2"
#: The releases the generator was run with (the oldest 1.0.x on PyPI and the pinned one).
TESTED_TIMM = ("1.0.3", "1.0.31")
#: Set to 1 to run under an unsupported timm anyway.
ANY_TIMM_ENV = "D2TIMM_ANY_TIMM"

_VERSION = re.compile(r"""__version__\s*=\s*['"]([^'"]+)['"]""")


def installed_timm_version() -> Optional[str]:
    """The version of the timm that ``import timm`` would import (None: not installed).

    Read from ``timm/version.py`` without importing timm (which takes seconds); falls
    back to the distribution's metadata."""
    try:
        spec = importlib.util.find_spec("timm")
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return None
    for location in spec.submodule_search_locations or ():
        version_file = Path(location) / "version.py"
        if version_file.is_file():
            match = _VERSION.search(version_file.read_text(encoding="utf-8", errors="replace"))
            if match:
                return match.group(1)
    try:
        from importlib.metadata import version

        return version("timm")
    except Exception:
        return "unknown"


def timm_is_supported(version: str) -> bool:
    """Whether ``version`` is inside :data:`SUPPORTED_TIMM` (pre-releases included)."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    try:
        return SpecifierSet(SUPPORTED_TIMM).contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False


def unsupported_timm(version: Optional[str] = None) -> Optional[str]:
    """Why the installed timm (or ``version``) cannot be used; None if it can."""
    if version is None:
        version = installed_timm_version()
    if version is None:
        return f"timm is not installed; d2timm-gen needs timm {SUPPORTED_TIMM}: pip install 'timm{SUPPORTED_TIMM}'"
    if timm_is_supported(version):
        return None
    return (
        f"timm {version} is installed; d2timm-gen supports timm {SUPPORTED_TIMM} "
        f"(tested with {TESTED_TIMM[0]} to {TESTED_TIMM[-1]}). Install one: pip install 'timm{SUPPORTED_TIMM}' "
        f"(or set {ANY_TIMM_ENV}=1 to try this one anyway)"
    )


def any_timm_allowed() -> bool:
    return os.environ.get(ANY_TIMM_ENV, "").strip() not in ("", "0")


def timm_gate() -> Tuple[Optional[str], Optional[str]]:
    """(error, warning) for the CLI: an error for a timm outside the supported range
    (or none at all); only a warning for one outside it when ``D2TIMM_ANY_TIMM=1``."""
    version = installed_timm_version()
    problem = unsupported_timm(version)
    if problem is None:
        return None, None
    if version is not None and any_timm_allowed():
        return (
            None,
            f"timm {version} is outside the supported range {SUPPORTED_TIMM}; running anyway ({ANY_TIMM_ENV}=1)",
        )
    return problem, None


#: In-place tensor methods (and ``torch.nn.init`` functions) that weight initialisers
#: use. On the meta device they change nothing, there are no values, but each costs a
#: Python-level meta kernel: skipping them makes building a model about four times
#: faster. In-place ops cannot change a tensor's shape, so nothing measured depends on them.
INIT_METHODS = frozenset(
    {
        "add_", "clamp_", "copy_", "div_", "erfinv_", "exponential_", "fill_", "mul_", "normal_",
        "sub_", "trunc_normal_", "uniform_", "zero_", "zeros_", "ones_", "constant_", "xavier_uniform_",
        "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_",
    }
)  # fmt: skip


def _meta_init_target(func, args, kwargs):
    """The meta tensor an initialiser of :data:`INIT_METHODS` is called on, else None.
    ``torch.nn.init`` functions pass it as the keyword ``tensor``."""
    if getattr(func, "__name__", "") not in INIT_METHODS:
        return None
    import torch

    target = args[0] if args else (kwargs or {}).get("tensor")
    return target if isinstance(target, torch.Tensor) and target.is_meta else None


def _build_mode(host_linspace: bool):
    """The TorchFunctionMode of :func:`skip_meta_init` and :func:`meta_device`."""
    import torch
    from torch.overrides import TorchFunctionMode

    linspace = torch.linspace

    class _BuildMode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if host_linspace and func is linspace and "device" not in kwargs:
                return func(*args, **kwargs, device="cpu")
            target = _meta_init_target(func, args, kwargs)
            return target if target is not None else func(*args, **kwargs)

    return _BuildMode()


@contextlib.contextmanager
def skip_meta_init() -> Iterator[None]:
    """Inside: the in-place initialisers of :data:`INIT_METHODS` return meta tensors as
    they are; every other call, and every call on real tensors, runs as usual."""
    with _build_mode(host_linspace=False):
        yield


@contextlib.contextmanager
def meta_device() -> Iterator[None]:
    """``with torch.device("meta")`` for creating timm models, with two changes.

    - A ``torch.linspace`` call with no ``device`` runs on the CPU. timm before 1.0.21
      computes drop-path rates in ``__init__`` with
      ``[x.item() for x in torch.linspace(0, rate, depth)]`` (convnext,
      vision_transformer, swin, eva and about 40 other model modules); under the meta
      device that raises "Cannot copy out of meta tensor". Those values become Python
      floats, never parameters, so computing them on the CPU changes nothing about the
      model. Calls that pass a device (timm's sin-cos position embeddings) stay on the
      meta device. From 1.0.21 on (``calculate_drop_path_rates``) this changes nothing.
    - Weight initialisation of meta tensors is skipped (:func:`skip_meta_init`).

    Only for building: a forward under it would skip in-place arithmetic too.
    """
    import torch

    # Entered after the device context, so it sees each call first and the device
    # context then leaves the explicit "cpu" alone.
    with torch.device("meta"), _build_mode(host_linspace=True):
        yield
