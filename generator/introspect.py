"""Introspect: the only place that creates timm models.

Each architecture is created once, ``features_only``, on the meta device (no memory, no
compute), in eval mode, and probed with one forward pass at a non-square size. The
probe verifies timm's nominal reductions and detects the output layout. The result is a
:class:`~generator.spec.ModelFacts` or a one-line reason why the model cannot be used.

Models are introspected in worker processes (:func:`introspect_all`): a crash or a hang
of one model is recorded as that model's failure and the run goes on.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import math
import multiprocessing
import os
from concurrent.futures import as_completed
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Iterator, NamedTuple, Optional, Sequence, Tuple, Union

from .discover import ModelRef
from .names import safe_text
from .spec import FeatureFacts, GridParam, ModelFacts

__all__ = ["Failure", "IntrospectionError", "introspect", "introspect_all", "probe_size"]

#: Seconds one model may take before its worker is killed and it is recorded as failed.
DEFAULT_TIMEOUT = 300

#: Models one worker process introspects before it is replaced. A worker's memory
#: stays flat (about 700 to 740 MiB over 250 models of the whole catalog), and each
#: replacement costs a fresh import of torch and timm (seconds), so this is large.
MAX_TASKS_PER_WORKER = 1000

#: Preferred probe input (H, W): non-square, so a transposed or mis-measured axis shows.
PROBE_TARGET = (256, 320)


class IntrospectionError(RuntimeError):
    """A model that cannot become a backbone; the message is the recorded reason."""


@dataclass(frozen=True)
class Failure:
    name: str
    family: str
    reason: str


def probe_size(step: int) -> Tuple[int, int]:
    """A non-square (H, W), multiples of ``step``, near :data:`PROBE_TARGET`."""
    h = step * max(2, math.ceil(PROBE_TARGET[0] / step))
    w = step * max(2, math.ceil(PROBE_TARGET[1] / step))
    if w == h:
        w += step
    return h, w


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    message = text[0] if text else ""
    return f"{type(exc).__name__}: {message}"[:300]


def _message(exc: BaseException) -> str:
    """An IntrospectionError's own text; other errors with their type."""
    return str(exc) if isinstance(exc, IntrospectionError) else _first_line(exc)


def _module_path(net, module: str) -> str:
    """Where timm's feature module ``module`` sits inside the features_only wrapper, or
    "" where the wrapper rebuilt the model and no such module exists (hrnet, mvitv2):
    such levels are returned all the same, but cannot be frozen stage by stage."""
    head, _, tail = module.partition(".")
    candidates = [module, f"{head}_{tail}" if tail else module, f"model.{module}", f"body.{module}"]
    for path in candidates:
        try:
            net.get_submodule(path)
        except AttributeError:
            continue
        return path
    return ""


def _layout(net) -> str:
    fmt = getattr(net, "output_fmt", None)
    if fmt is None:
        return "NCHW"
    value = getattr(fmt, "value", fmt)
    if value not in ("NCHW", "NHWC"):
        raise IntrospectionError(f"unsupported output_fmt {value!r}")
    return value


#: Where probe models live: the meta device (shapes only, no memory), or the CPU for the
#: models whose forward reads tensor values (see :func:`introspect`).
_DEVICE: contextvars.ContextVar = contextvars.ContextVar("probe_device", default="meta")

#: The largest model measured on real CPU tensors when the meta device cannot run it:
#: its probe forwards cost seconds to a minute each on two cores up to this size.
MAX_REAL_TENSOR_PARAMS = 1_000_000_000

#: What the meta device says when a forward needs a tensor's values (``.item()``).
META_VALUE_ERRORS = ("cannot be called on meta tensors", "Cannot copy out of meta tensor")


@contextlib.contextmanager
def _real_tensors() -> Iterator[None]:
    token = _DEVICE.set("cpu")
    try:
        yield
    finally:
        _DEVICE.reset(token)


def _create(name: str, **kwargs):
    import timm

    from .compat import meta_device

    with meta_device() if _DEVICE.get() == "meta" else contextlib.nullcontext():
        return timm.create_model(name, pretrained=False, features_only=True, **kwargs).eval()


def _measured_stride(level: int, size: int, out: int, nominal: int, axis: str, exact: bool) -> int:
    """The stride a probe output shows: timm's nominal one if the size is ``ceil(size /
    nominal)`` give or take one (timm's own padding), else an exact integral ratio.

    ``exact``: the probe size was meant to be a multiple of every reduction; one that is
    not (crossvit's second branch resizes its input inside the model) has no stride.
    """
    if exact and size % nominal:
        raise IntrospectionError(
            f"level {level}: timm's reduction {nominal} does not divide the input {axis} {size}, "
            "so its stride cannot be measured (crossvit-like models resample their input inside)"
        )
    if abs(out - math.ceil(size / nominal)) <= 1:
        return nominal
    if out > 0 and size % out == 0:
        return size // out
    raise IntrospectionError(
        f"level {level}: {axis} {out} at input {size} is not an integral reduction (timm says {nominal})"
    )


#: How a model is made to accept detector-sized, non-square inputs, tried in order: as
#: it is; with timm's dynamic image size (the runtime pads the input to the patch size,
#: as it pads every model to its step); with dynamic image size and timm's own padding
#: to the patch size. The first that passes the probe is recorded in the facts and used
#: at run time. timm's own padding comes last: it computes the token grid with
#: ``math.ceil`` on Python numbers, which a traced export (ONNX, TorchScript) records as
#: the example's grid, so a dynamic graph breaks at any other size; the floor division
#: of the unpadded path stays symbolic.
SIZE_MODES: Tuple[Tuple[Tuple[str, bool], ...], ...] = (
    (),
    (("dynamic_img_size", True),),
    (("dynamic_img_pad", True), ("dynamic_img_size", True)),
)


def _all_levels(name: str, kwargs: dict, extra: Optional[dict] = None) -> Tuple[object, Optional[dict]]:
    """The features_only model with every level timm declares (some only allow their
    defaults), and the arguments that gave every level: ``{}`` when the default does,
    ``{"out_indices": ...}`` when they had to be asked for, None when the model only
    gives its default levels. Given ``extra`` from an earlier creation of the same
    model, one creation is enough."""
    if extra is not None:
        return _create(name, **extra, **kwargs), extra
    net = _create(name, **kwargs)
    levels = tuple(range(len(net.feature_info.info)))
    if tuple(net.feature_info.out_indices) == levels:
        return net, {}
    try:
        return _create(name, out_indices=levels, **kwargs), {"out_indices": levels}
    except Exception:  # some models only expose their default levels; keep those
        return net, None


def _shape_only_mode():
    """A TorchFunctionMode for probe forwards: the calls that take most of a forward on
    the meta device (each a Python-level meta kernel: batch norm alone is 90 % of a
    ResNet's) return an empty tensor of the shape they would return, after checking the
    shapes that would make them fail. Where a shortcut is unsure (type promotion,
    broadcasting to a new shape, an unusual attention mask) the call runs as usual, as
    every other call does. Probe forwards are two to five times faster; shapes and shape
    errors are the same (``tests/test_introspect.py`` compares them)."""
    import torch
    import torch.nn.functional as F
    from torch._prims_common import suggest_memory_format
    from torch.overrides import TorchFunctionMode

    def like(x):
        """``torch.empty_like(x)``, whose meta kernel runs in Python (90 us a call); for a
        dense layout (whose strides it keeps) the strides are given directly (10 us)."""
        if x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last):
            return x.new_empty_strided(x.shape, x.stride())
        return torch.empty_like(x)

    def same(x, *args, **kwargs):
        return like(x)

    def batch_norm(x, running_mean, running_var, weight=None, bias=None, *args, **kwargs):
        for param in (running_mean, running_var, weight, bias):
            if param is not None and (x.dim() < 2 or param.numel() != x.shape[1]):
                raise RuntimeError(f"batch_norm: input of shape {tuple(x.shape)}, parameter of {param.numel()}")
        return like(x)

    def layer_norm(x, normalized_shape, *args, **kwargs):
        normalized = tuple(normalized_shape)
        if tuple(x.shape[x.dim() - len(normalized) :]) != normalized:
            raise RuntimeError(f"layer_norm: input of shape {tuple(x.shape)}, normalized_shape {normalized}")
        return like(x)

    def group_norm(x, num_groups, weight=None, bias=None, *args, **kwargs):
        wrong = [p.numel() for p in (weight, bias) if p is not None and x.dim() >= 2 and p.numel() != x.shape[1]]
        if x.dim() < 2 or x.shape[1] % num_groups or wrong:
            raise RuntimeError(f"group_norm: {num_groups} groups for input of shape {tuple(x.shape)}")
        return like(x)

    def linear(x, weight, bias=None):
        if weight.dim() != 2 or x.dim() < 1 or x.shape[-1] != weight.shape[1]:
            raise RuntimeError(
                f"linear: mat1 and mat2 shapes cannot be multiplied ({tuple(x.shape)} and {tuple(weight.shape)})"
            )
        return x.new_empty((*x.shape[:-1], weight.shape[0]))

    def binary(a, b, *args, **kwargs):
        """add / mul: the output has the shape (and layout) of the operand as large as it."""
        if "out" in kwargs:
            return None
        if isinstance(b, (int, float)) and not isinstance(b, bool):
            return like(a) if a.is_floating_point() else None
        if not isinstance(b, torch.Tensor) or not b.is_meta or b.dtype != a.dtype:
            return None
        shape = torch.broadcast_shapes(a.shape, b.shape)  # raises where the real call would
        if shape == a.shape:
            return like(a)
        return like(b) if shape == b.shape else None

    def attention(q, k, v, attn_mask=None, *args, **kwargs):
        if not (isinstance(k, torch.Tensor) and isinstance(v, torch.Tensor) and k.is_meta and v.is_meta):
            return None
        if q.dim() < 2 or not q.dim() == k.dim() == v.dim() or kwargs.get("enable_gqa"):
            return None
        if not q.shape[:-2] == k.shape[:-2] == v.shape[:-2] or q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
            return None
        scores = (*q.shape[:-1], k.shape[-2])
        if attn_mask is not None and torch.broadcast_shapes(attn_mask.shape, scores) != scores:
            return None
        return q.new_empty((*q.shape[:-1], v.shape[-1]))

    def lstm(x, hx, weights, *args, **kwargs):
        """nn.LSTM (the padded overload): an output of (..., directions * hidden), and the
        final states shaped as the initial ones. Runs once per step on the meta device
        otherwise (seconds for sequencer's rows and columns)."""
        if not isinstance(hx, (tuple, list)) or len(hx) != 2 or not weights or x.dim() != 3:
            return None
        bidirectional = args[4] if len(args) > 4 else kwargs.get("bidirectional")
        if not isinstance(bidirectional, bool) or x.shape[-1] != weights[0].shape[1]:
            return None
        directions = 2 if bidirectional else 1
        return x.new_empty((*x.shape[:-1], directions * hx[0].shape[-1])), like(hx[0]), like(hx[1])

    def interpolate(x, size=None, scale_factor=None, mode="nearest", align_corners=None, *args, **kwargs):
        """F.interpolate of an N x C x H x W map (FPN's top-down path, a segmentation head's
        upsampling): (N, C, *size), or floor(side * scale) per side as torch computes it."""
        if x.dim() != 4 or mode not in ("nearest", "nearest-exact", "bilinear", "bicubic"):
            return None
        if (size is None) == (scale_factor is None) or (align_corners is not None and mode.startswith("nearest")):
            return None
        if size is not None:
            sides = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        else:
            scales = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor, scale_factor)
            if len(scales) != 2 or not all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in scales):
                return None
            sides = tuple(math.floor(float(n) * float(s)) for n, s in zip(x.shape[2:], scales))
        if len(sides) != 2 or not all(type(n) is int and n > 0 for n in sides):
            return None
        # the layout torch's kernels give (channels last for an input strided like it)
        return torch.empty((*x.shape[:2], *sides), dtype=x.dtype, device=x.device, memory_format=suggest_memory_format(x))

    elementwise = (
        F.relu, F.relu6, F.gelu, F.silu, F.mish, F.hardswish, F.hardsigmoid, F.sigmoid, F.elu,
        F.leaky_relu, F.dropout, torch.sigmoid, torch.tanh,
    )  # fmt: skip
    binaries = (
        torch.add, torch.mul, torch.Tensor.add, torch.Tensor.mul, torch.Tensor.__add__, torch.Tensor.__radd__,
        torch.Tensor.__mul__, torch.Tensor.__rmul__,
    )  # fmt: skip
    table = {
        **{f: same for f in elementwise},
        **{f: binary for f in binaries},
        F.batch_norm: batch_norm,
        F.layer_norm: layer_norm,
        F.group_norm: group_norm,
        F.linear: linear,
        F.scaled_dot_product_attention: attention,
        F.interpolate: interpolate,
        torch._VF.lstm: lstm,
    }

    class _ShapeOnly(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            shortcut = table.get(func)
            if shortcut is not None and args and isinstance(args[0], torch.Tensor) and args[0].is_meta:
                result = shortcut(*args, **kwargs)
                if result is not None:
                    return result
            return func(*args, **kwargs)

    return _ShapeOnly()


def _forward(net, channels: int, size: Tuple[int, int]) -> list:
    import torch

    with torch.no_grad(), _shape_only_mode():  # shortcuts for meta tensors only
        outputs = net(torch.zeros(1, channels, *size, device=_DEVICE.get()))
    return list(outputs.values()) if isinstance(outputs, dict) else list(outputs)


def _spatial(out, layout: str) -> Tuple[int, int]:
    return tuple(out.shape[1:3]) if layout == "NHWC" else tuple(out.shape[2:4])


def _fits(out, layout: str, size: Tuple[int, int], nominal: int) -> bool:
    """Whether a map is exactly ceil(size / reduction), or the reduction divides the size
    (then timm's own padding may make it a row or column off)."""
    if out.dim() != 4:
        return True  # let the measurement say what is wrong
    exact = _spatial(out, layout) == (math.ceil(size[0] / nominal), math.ceil(size[1] / nominal))
    return exact or not (size[0] % nominal or size[1] % nominal)


class _Measured(NamedTuple):
    layout: str
    features: Tuple[FeatureFacts, ...]
    slack: int
    omitted: Tuple[str, ...] = ()


def _measure(net, size: Tuple[int, int], outputs: list, exact: bool = True, omit: bool = False) -> _Measured:
    """Layout, feature levels and size slack that a probe forward at ``size`` shows.

    ``exact``: ``size`` should be a multiple of every reduction. ``omit``: leave out the
    levels whose reduction does not divide ``size`` (they have no fixed stride), as long
    as one level remains.
    """
    info = net.feature_info
    indices = list(info.out_indices)
    if len(outputs) != len(indices):
        raise IntrospectionError(f"probe returned {len(outputs)} maps for {len(indices)} declared levels")
    layout = _layout(net)
    features = []
    omitted = []
    slack = 0
    for level, index, out in zip(range(len(indices)), indices, outputs):
        entry = info.info[index]
        nominal = int(entry["reduction"])
        if omit and not _fits(out, layout, size, nominal):
            omitted.append(entry["module"])
            continue
        if out.dim() != 4:
            raise IntrospectionError(f"level {level}: output has {out.dim()} dims, not 4")
        n, a, b, c = out.shape
        channels, h, w = (a, b, c) if layout == "NCHW" else (c, a, b)
        if channels != entry["num_chs"]:
            raise IntrospectionError(
                f"level {level}: {channels} channels in {layout} output, timm declares {entry['num_chs']}"
            )
        stride_h = _measured_stride(level, size[0], h, nominal, "height", exact)
        stride_w = _measured_stride(level, size[1], w, nominal, "width", exact)
        if stride_h != stride_w:
            raise IntrospectionError(f"level {level}: anisotropic stride {stride_h}x{stride_w}")
        slack = max(slack, abs(h - math.ceil(size[0] / stride_h)), abs(w - math.ceil(size[1] / stride_w)))
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
    if slack > 1:
        raise IntrospectionError(f"maps differ from input / stride by {slack} rows or columns")
    if not features:
        raise IntrospectionError(f"no level has a reduction that divides the input {size[0]}x{size[1]}")
    return _Measured(layout, tuple(features), slack, tuple(omitted))


def _crop(out, layout: str, height: int, width: int):
    return out[:, :height, :width, :] if layout == "NHWC" else out[..., :height, :width]


def _padded_measure(net, channels: int, size: Tuple[int, int], outputs: list, step: int):
    """For models whose unpadded convolutions shrink the maps below ceil(size / stride)
    (inception): the smallest bottom/right input padding, a multiple of ``step``, after
    which every map covers ceil(size / stride) and can be cropped to it. Returns
    (padding, measurement) or None when the maps are not merely too small."""
    info = net.feature_info
    layout = _layout(net)
    reductions = [int(info.info[i]["reduction"]) for i in info.out_indices]
    if len(outputs) != len(reductions) or any(size[0] % r or size[1] % r for r in reductions):
        return None
    targets = [(size[0] // r, size[1] // r) for r in reductions]
    deficit = 0
    for out, r, (th, tw) in zip(outputs, reductions, targets):
        if out.dim() != 4:
            return None
        h, w = _spatial(out, layout)
        if h > th or w > tw:
            return None
        deficit = max(deficit, (th - h) * r, (tw - w) * r)
    if deficit == 0:  # the maps are not too small: something else is wrong
        return None
    pad = step * math.ceil(deficit / step)
    for _ in range(3):
        padded = _forward(net, channels, (size[0] + pad, size[1] + pad))
        shapes = [_spatial(out, layout) for out in padded]
        if all(h >= th and w >= tw for (h, w), (th, tw) in zip(shapes, targets)):
            cropped = [_crop(out, layout, th, tw) for out, (th, tw) in zip(padded, targets)]
            return pad, _measure(net, size, cropped)
        pad += step
    return None


def _check_odd_multiple(net, channels: int, size: Tuple[int, int], multiple: int, measured: _Measured) -> None:
    """Measure again at an odd multiple of ``multiple`` (the probe size may be an even
    one): a model that needs more, such as mobilevitv2, whose stride-32 stages unfold
    2x2 patches and so need multiples of 64, fails here and is tried with a larger one."""
    odd = tuple(s + multiple if (s // multiple) % 2 == 0 else s for s in size)
    again = _measure(net, odd, _forward(net, channels, odd))
    if again.features != measured.features or again.layout != measured.layout or again.slack > measured.slack:
        raise IntrospectionError(f"levels measured at {odd[0]}x{odd[1]} differ from those at {size[0]}x{size[1]}")


#: Families whose models pass every meta-device probe at any size but index tables sized
#: for the pretrained input at build time, so real inputs larger than it fail (meta
#: tensors do not check indices). Found by real compute at sizes above the default, one
#: model per family (``tests/test_backbones.py`` keeps one in its sample). They are
#: treated as fixed-size: every input is padded to the pretrained size.
SIZE_BOUND_FAMILIES = {
    "mvitv2": "relative position tables are built for the pretrained input size",
}


class _Probe(NamedTuple):
    net: object
    mode: Tuple[Tuple[str, bool], ...]
    size: Tuple[int, int]
    measured: _Measured
    input_multiple: int
    fixed: bool
    input_pad: int = 0
    build: Optional["_Build"] = None  # a fixed-size model built at the detection side
    fixed_reason: str = ""  # a fixed-size model that stays at its pretrained size: why


# ------------------------------------------------------------- fixed-size models, moved

#: The square side a fixed-size model is built at for detection, where timm can build it
#: at another size (``img_size=``): ViTDet's input (Li et al., 2022), which pads every
#: image to a square. The first multiple of the model's step at or above it is used.
DETECTION_SIDE = 1024

#: Parameters whose shape follows the input size and that a checkpoint at the pretrained
#: size can be resampled into, by name: (fnmatch pattern, kind). Absolute position
#: embeddings are "tokens" (class tokens first); relative-position and attention-bias
#: tables are "table" (extra entries last, as BEiT's); 1-D relative offsets are "line".
#: A "tokens" or "table" parameter laid out on two dims becomes "grid". Any other
#: parameter that changes shape (a token-mixing MLP sized by the patch count) keeps the
#: model at its pretrained size.
GRID_RULES: Tuple[Tuple[str, str], ...] = (
    ("*relative_position_bias_table", "table"),
    ("*attention_biases", "table"),
    ("*height_rel", "line"),
    ("*width_rel", "line"),
    ("*rel_pos_h", "line"),
    ("*rel_pos_w", "line"),
    ("*pos_embed*", "tokens"),
    ("*pos_emb", "tokens"),
    ("*patch_pos", "tokens"),
)

#: Entries off the grid a flattened table may hold (class tokens, BEiT's 3 distances).
MAX_EXTRA = 8


class _Build(NamedTuple):
    side: int
    multiple: int
    net: object
    measured: _Measured
    grid_params: Tuple[GridParam, ...]


def _pattern(key: str) -> str:
    """A state-dict key with its numbered parts as ``*`` (one pattern per repeated block)."""
    return ".".join("*" if part.isdigit() else part for part in key.split("."))


def _square_root(value: int) -> int:
    root = math.isqrt(value) if value > 0 else 0
    return root if root * root == value else 0


def _grid_param(key: str, before: Tuple[int, ...], after: Tuple[int, ...]) -> GridParam:
    """How ``key`` is laid out, from its shapes at the pretrained and the detection side."""
    import fnmatch

    rule = next((kind for pattern, kind in GRID_RULES if fnmatch.fnmatchcase(key, pattern)), None)
    changed = tuple(d for d, (a, b) in enumerate(zip(before, after)) if a != b)
    shapes = f"{list(before)} at the pretrained size, {list(after)} at the detection size"
    if rule is None or len(before) != len(after):
        raise IntrospectionError(
            f"its parameter {_pattern(key)} is sized by the input ({shapes}) and is not a position embedding or a "
            "relative-position or attention-bias table that a checkpoint could be resampled into"
        )
    if rule == "line" and len(changed) == 1:
        return GridParam(pattern=_pattern(key), kind="line", dims=changed)
    if rule != "line" and len(changed) == 2 and changed[1] == changed[0] + 1:
        return GridParam(pattern=_pattern(key), kind="grid", dims=changed)
    if rule != "line" and len(changed) == 1:
        a, b = before[changed[0]], after[changed[0]]
        for extra in range(MAX_EXTRA + 1):
            if _square_root(a - extra) and _square_root(b - extra):
                return GridParam(pattern=_pattern(key), kind=rule, dims=changed, extra=extra)
    raise IntrospectionError(f"parameter {_pattern(key)}: no grid layout explains its shapes ({shapes})")


def _state_shapes(name: str, side: int) -> Dict[str, Tuple[int, ...]]:
    """Shapes of the classifier's state dict (what checkpoints hold) built at ``side``."""
    import timm

    from .compat import meta_device

    with meta_device():
        net = timm.create_model(name, pretrained=False, img_size=side)
    return {key: tuple(value.shape) for key, value in net.state_dict().items()}


def _grid_params(name: str, pretrained_side: int, side: int) -> Tuple[GridParam, ...]:
    """The parameters whose shape differs between the two sides, one entry per pattern
    (per key where the blocks of one pattern are laid out differently)."""
    before, after = _state_shapes(name, pretrained_side), _state_shapes(name, side)
    if set(before) != set(after):
        odd = sorted(set(before) ^ set(after))[:3]
        raise IntrospectionError(f"the model built at {side} has other parameters ({', '.join(odd)})")
    by_pattern: Dict[str, list] = {}
    for key in sorted(before):
        if before[key] != after[key]:
            by_pattern.setdefault(_pattern(key), []).append(_grid_param(key, before[key], after[key]))
    params = []
    for pattern, found in sorted(by_pattern.items()):
        if len(set(found)) == 1:
            params.append(found[0])
        else:  # blocks of one pattern laid out differently: one entry per key
            keys = sorted(k for k in before if before[k] != after[k] and _pattern(k) == pattern)
            params.extend(dataclasses.replace(_grid_param(k, before[k], after[k]), pattern=k) for k in keys)
    return tuple(params)


def _detection_build(
    name: str, channels: int, pretrained: Tuple[int, int], extra: Optional[dict], at_pretrained: _Measured
) -> Union[_Build, str]:
    """Build a fixed-size model at the detection side, measure it there and find its
    grid-sized parameters; or say why it stays at its pretrained size."""
    if pretrained[0] != pretrained[1]:
        return f"its pretrained input {pretrained[0]}x{pretrained[1]} is not square"
    step = math.lcm(*(f.reduction for f in at_pretrained.features))
    candidates = (step, 2 * step, 4 * step, math.lcm(step, pretrained[0]))
    multiples = sorted(set(candidates), key=lambda m: (math.ceil(DETECTION_SIDE / m) * m, m))
    declared = [(f.module, f.channels) for f in at_pretrained.features]
    errors = []
    for multiple in multiples:
        side = multiple * math.ceil(DETECTION_SIDE / multiple)
        try:
            built = [_build_at(name, channels, s, extra, declared) for s in (side, side + multiple)]
        except TypeError:
            return "timm builds it at one input size only (its create function takes no img_size)"
        except IntrospectionError as exc:
            errors.append(str(exc))
            continue
        try:
            grid = _grid_params(name, pretrained[0], side)
        except IntrospectionError as exc:
            return str(exc)
        net, measured = built[0]
        return _Build(side, multiple, net, measured, grid)
    return errors[0]  # the first size tried, nearest the detection side


def _build_at(
    name: str, channels: int, side: int, extra: Optional[dict], declared: Sequence[Tuple[str, int]]
) -> Tuple[object, _Measured]:
    """The model built at ``side`` and measured there, with the levels it has at its
    pretrained size. A multiple is claimed only once a second side, one multiple larger,
    works too (halo attention's blocks need more than the strides say)."""
    try:
        net, _ = _all_levels(name, {"img_size": side}, extra)
    except TypeError:
        raise
    except Exception as exc:
        raise IntrospectionError(f"built at {side}x{side}: {_message(exc)}") from None
    try:
        measured = _measure(net, (side, side), _forward(net, channels, (side, side)), exact=False, omit=True)
    except Exception as exc:
        raise IntrospectionError(f"timm builds it at {side}x{side}, but its forward fails there: {_message(exc)}") from None
    if [(f.module, f.channels) for f in measured.features] != list(declared):
        raise IntrospectionError(f"built at {side}x{side}, it has other feature levels")
    return net, measured


def _probe(name: str, cfg: dict, family: str = "") -> _Probe:
    """Find how the model takes non-square inputs, and measure it that way.

    Tries each of :data:`SIZE_MODES` at a non-square size that is a multiple of every
    reduction (then also of the default input height: windowed models such as maxvit
    need that). A model that passes none is measured at its default input size and
    marked fixed: the generated backbone pads its inputs to that size. Raises
    IntrospectionError with what went wrong at each size when nothing works.
    """
    channels, default_h, default_w = (int(v) for v in cfg.get("input_size", (3, 224, 224)))
    errors = []
    extra = None  # what gives every level, once a creation has shown it
    for mode in () if family in SIZE_BOUND_FAMILIES else SIZE_MODES:
        try:
            net, found = _all_levels(name, dict(mode), extra)
            extra = found if extra is None else extra
        except TypeError:  # the model has no such argument
            continue
        except Exception as exc:
            if not mode:
                raise IntrospectionError(f"features_only is not supported: {_first_line(exc)}") from None
            continue
        step = math.lcm(*net.feature_info.reduction())
        pads = bool(dict(mode).get("dynamic_img_pad"))
        for multiple in dict.fromkeys((step, 2 * step, 3 * step, 4 * step, math.lcm(step, default_h))):
            size = probe_size(multiple)
            if pads:
                size = (size[0] + 2, size[1] + 6)  # not multiples: the model pads itself
            outputs = None
            try:
                outputs = _forward(net, channels, size)
                measured = _measure(net, size, outputs, exact=not pads)
                if not pads:
                    _check_odd_multiple(net, channels, size, multiple, measured)
            except Exception as exc:
                errors.append(f"{size[0]}x{size[1]}: {_message(exc)}")
                try:
                    padded = (
                        None if pads or outputs is None else _padded_measure(net, channels, size, outputs, multiple)
                    )
                except Exception as again:
                    errors.append(f"{size[0]}x{size[1]} padded: {_message(again)}")
                    continue
                if padded is None:
                    continue
                return _Probe(net, mode, size, padded[1], multiple, False, input_pad=padded[0])
            return _Probe(net, mode, size, measured, 1 if pads else multiple, False)
    net, _ = _all_levels(name, {}, extra)
    size = (default_h, default_w)
    try:
        measured = _measure(net, size, _forward(net, channels, size), exact=False, omit=True)
    except Exception as exc:
        first = f"at {errors[0]}; " if errors else ""
        raise IntrospectionError(
            f"no input size works: {first}at the default {size[0]}x{size[1]}: {_message(exc)}"
        ) from None
    build = _detection_build(name, channels, size, extra, measured)
    if isinstance(build, str):
        return _Probe(net, (), size, measured, 1, True, fixed_reason=safe_text(build))
    return _Probe(build.net, (), (build.side, build.side), build.measured, 1, True, build=build)


def _parameter_count(name: str) -> int:
    """Parameters of the features_only model (built on the probe device, the meta one)."""
    return sum(p.numel() for p in _create(name).parameters())


def _measure_probe(name: str, cfg: dict, family: str) -> Tuple["_Probe", bool]:
    """The probe on the meta device, or on real CPU tensors for a model whose forward
    reads tensor values (gemma4_vit's ``.item()`` on its position ids), up to
    :data:`MAX_REAL_TENSOR_PARAMS`. Returns the probe and whether it needed real tensors."""
    try:
        return _probe(name, cfg, family), False
    except IntrospectionError as exc:
        if not any(text in str(exc) for text in META_VALUE_ERRORS):
            raise
        params = _parameter_count(name)
        if params > MAX_REAL_TENSOR_PARAMS:
            raise IntrospectionError(
                f"{exc}; its forward reads tensor values, which the meta device does not have, and at "
                f"{params / 1e6:.0f}M parameters it is too large to measure on real tensors "
                f"(at most {MAX_REAL_TENSOR_PARAMS / 1e6:.0f}M)"
            ) from None
    with _real_tensors():
        return _probe(name, cfg, family), True


#: The dilated output strides detection and segmentation ask timm for (``output_stride=``:
#: DeepLab's 16 and 8): the coarse stages keep their resolution, with dilated convolutions.
DILATED_OUTPUT_STRIDES = (8, 16)


def _output_strides(name: str, probe: "_Probe", channels: int) -> Tuple[int, ...]:
    """The values of :data:`DILATED_OUTPUT_STRIDES` timm builds ``name`` with, each verified
    by a probe forward: the same levels (modules, channels), every stride ``min(stride,
    output_stride)``. A model whose constructor refuses the argument, ignores it, or
    changes anything else does not take it."""
    if probe.fixed:
        return ()
    strides = [f.stride for f in probe.measured.features]
    supported = []
    for output_stride in DILATED_OUTPUT_STRIDES:
        if max(strides) <= output_stride:
            continue
        try:
            net, _ = _all_levels(name, {**dict(probe.mode), "output_stride": output_stride})
            measured = _measure(net, probe.size, _forward(net, channels, probe.size))
        except Exception:  # no such argument, or a model that cannot dilate
            continue
        same = [(f.module, f.channels) for f in measured.features] == [
            (f.module, f.channels) for f in probe.measured.features
        ]
        if same and [f.stride for f in measured.features] == [min(s, output_stride) for s in strides]:
            supported.append(output_stride)
    return tuple(supported)


# ------------------------------------------------------------- optimizer facts


def _flat(name: str) -> str:
    """A parameter name as timm's features wrappers may rewrite it: FeatureListNet flattens
    ``stages.0`` to ``stages_0``; FeatureGetterNet and the hook nets hold the model as
    ``model`` or ``body``."""
    return name.replace(".", "_")


def _classifier_names(features_names: Sequence[str], classifier_names: Sequence[str]) -> Optional[Dict[str, str]]:
    """Each features_only parameter's name in the classifier timm builds with the same
    arguments, or None when a name has no single match (the wrapper rebuilt the model)."""
    by_flat: Dict[str, list] = {}
    for name in classifier_names:
        by_flat.setdefault(_flat(name), []).append(name)
    found = {}
    for name in features_names:
        flat = _flat(name)
        candidates = [flat] + [flat[len(p) :] for p in ("model_", "body_") if flat.startswith(p)]
        matches = next((by_flat[c] for c in candidates if c in by_flat), [])
        if len(matches) != 1:
            return None
        found[name] = matches[0]
    return found if len(set(found.values())) == len(found) else None


def _layer_table(layer_of: Dict[str, int]) -> Tuple[Tuple[str, int], ...]:
    """``layer_of`` (parameter name -> layer, in parameter order) as the shortest module
    paths under which every parameter has one layer, in the same order."""
    table = []

    def walk(prefix: Tuple[str, ...], entries: list) -> None:
        layers = {layer for _, layer in entries}
        if prefix and len(layers) == 1:
            table.append((".".join(prefix), layers.pop()))
            return
        children: Dict[str, list] = {}
        for parts, layer in entries:
            children.setdefault(parts[0], []).append((parts[1:], layer))
        for part, below in children.items():
            walk(prefix + (part,), below)

    walk((), [(tuple(name.split(".")), layer) for name, layer in layer_of.items()])
    return tuple(table)


def _name_patterns(selected: Sequence[str], names: Sequence[str]) -> Tuple[str, ...]:
    """``selected`` names as patterns with their numbered parts as ``*``, where those select
    exactly ``selected`` among ``names``; else the names themselves."""
    patterns = sorted({_pattern(name) for name in selected})
    chosen = {name for name in names if _pattern(name) in patterns}
    return tuple(patterns) if chosen == set(selected) else tuple(sorted(selected))


class _OptimizerFacts(NamedTuple):
    layers: Tuple[Tuple[str, int], ...]
    no_weight_decay: Tuple[str, ...]
    reason: str


def _optimizer_facts(name: str, probe: "_Probe") -> _OptimizerFacts:
    """timm's own optimizer facts, stated for the features_only model's parameters: the
    layer of each (``group_matcher(coarse=False)``, the layering timm's layer-wise decay
    uses, renumbered 0.. over the parameters the backbone has: the classifier's head and
    final norm are not among them) and the ones timm exempts from weight decay
    (``no_weight_decay()``, fnmatch patterns on the classifier's names)."""
    import fnmatch

    import timm
    from timm.models import group_parameters

    from .compat import meta_device

    kwargs = dict(probe.mode, **({"img_size": probe.build.side} if probe.build else {}))
    with meta_device():
        classifier = timm.create_model(name, pretrained=False, **kwargs)
    classifier_names = [n for n, _ in classifier.named_parameters()]
    features_names = [n for n, _ in probe.net.named_parameters()]
    mapping = _classifier_names(features_names, classifier_names)
    if mapping is None:
        return _OptimizerFacts((), (), "timm's features wrapper renames its parameters, so timm's layering does not apply")
    exempt = getattr(classifier, "no_weight_decay", None)
    patterns = set(exempt()) if callable(exempt) else set()
    no_decay = [n for n in features_names if any(fnmatch.fnmatchcase(mapping[n], p) for p in patterns)]
    no_weight_decay = _name_patterns(no_decay, features_names) if no_decay else ()
    matcher = getattr(classifier, "group_matcher", None)
    if not callable(matcher):
        return _OptimizerFacts((), no_weight_decay, "timm gives the model no group_matcher, so it has no layering")
    timm_layer = group_parameters(classifier, matcher(coarse=False), reverse=True)
    ranks = {layer: rank for rank, layer in enumerate(sorted({timm_layer[mapping[n]] for n in features_names}))}
    return _OptimizerFacts(_layer_table({n: ranks[timm_layer[mapping[n]]] for n in features_names}), no_weight_decay, "")


#: The drop-path rate introspection builds a model with, to see whether timm gives it one.
PROBE_DROP_PATH_RATE = 0.1


def _takes_drop_path(name: str, probe: "_Probe") -> bool:
    """Whether timm builds the model's stochastic depth for ``drop_path_rate``: some
    ``DropPath`` layer then drops with a positive probability."""
    from timm.layers import DropPath

    kwargs = dict(probe.mode, **({"img_size": probe.build.side} if probe.build else {}))
    try:
        net = _create(name, drop_path_rate=PROBE_DROP_PATH_RATE, **kwargs)
    except Exception:  # the model takes no such argument
        return False
    return any(isinstance(m, DropPath) and m.drop_prob > 0 for m in net.modules())


def introspect(name: str, family: str) -> ModelFacts:
    """Create ``name`` on the meta device and measure it with probe forwards (on real
    CPU tensors where the meta device cannot run it)."""
    import timm

    try:
        cfg = dict(timm.models.get_pretrained_cfg(name).to_dict())
    except Exception:
        cfg = {}
    probe, real = _measure_probe(name, cfg, family)
    optimizer = _optimizer_facts(name, probe)
    cfg = dict(getattr(probe.net, "pretrained_cfg", None) or cfg)
    input_size = tuple(int(v) for v in cfg.get("input_size", (3, 224, 224)))
    return ModelFacts(
        name=name,
        family=family,
        timm_version=timm.__version__,
        feature_class=type(probe.net).__name__,
        layout=probe.measured.layout,
        features=probe.measured.features,
        input_size=input_size,
        fixed_input_size=probe.fixed,
        pixel_mean=tuple(float(v) for v in cfg.get("mean", (0.485, 0.456, 0.406))),
        pixel_std=tuple(float(v) for v in cfg.get("std", (0.229, 0.224, 0.225))),
        probe_size=probe.size,
        create_kwargs=tuple(probe.mode),
        input_multiple=int(probe.input_multiple),
        size_slack=int(probe.measured.slack),
        input_pad=int(probe.input_pad),
        omitted=probe.measured.omitted,
        img_size=probe.build.side if probe.build else 0,
        img_size_multiple=probe.build.multiple if probe.build else 0,
        grid_params=probe.build.grid_params if probe.build else (),
        fixed_reason=probe.fixed_reason,
        params=sum(p.numel() for p in probe.net.parameters()),
        meta_forward=not real,
        output_strides=() if real else _output_strides(name, probe, input_size[0]),
        layers=optimizer.layers,
        no_weight_decay=optimizer.no_weight_decay,
        layers_reason=safe_text(optimizer.reason),
        drop_path=_takes_drop_path(name, probe),
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
        max_workers=workers,
        max_tasks=MAX_TASKS_PER_WORKER,
        initializer=_worker_init,
        initargs=(tuple(imports),),
        context=context,
    )
    try:
        futures = {pool.schedule(_introspect_task, args=(ref.name, ref.family), timeout=timeout): ref for ref in refs}
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
