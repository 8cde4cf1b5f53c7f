"""Any input size: the one padding rule every generated variant (plain, FPN, simple pyramid) follows.

A generated backbone takes any NCHW input. It zero-pads the input at the bottom and right
to what the model needs (:func:`pad_to`), runs, and fits every map to exactly
``ceil(input / stride)`` (:func:`fit_to_input`): the maps detectron2 would give had it
padded the batch itself, as it does for its own backbones. Each variant states what it
needs as ``size_divisibility`` (and ``padding_constraints``, read by detectron2 main's
``ImageList.from_tensors``). A batch detectron2 has padded to it is passed through as it
is: neither function copies a tensor that already has the size asked for.

The sizes are computed with integer arithmetic on the input's own shape, so that an
exported graph (ONNX through tracing, ``torch.export``) computes them from its input too:
while tracing, the pad and the crop are always recorded (by 0 where nothing is missing).
"""

from typing import Dict, Mapping, Tuple

import torch
import torch.nn.functional as F

__all__ = [
    "ceil_div",
    "exporting",
    "fit",
    "fit_to_input",
    "pad_to",
    "padded_size",
    "padding_constraints",
]


def exporting() -> bool:
    """Tracing (ONNX, TorchScript) or compiling (``torch.export``): sizes are symbolic."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


def ceil_div(a: int, b: int) -> int:
    """``ceil(a / b)`` for sizes (``a >= 0``, ``b > 0``), in integer arithmetic on
    non-negative values: traced sizes stay traced, and ONNX's integer division (which
    truncates) agrees with Python's."""
    return (a + b - 1) // b


def padded_size(height: int, width: int, divisibility: int, extra: int = 0) -> Tuple[int, int]:
    """The smallest multiple of ``divisibility`` at or above each side, plus ``extra``."""
    step = max(int(divisibility), 1)
    return ceil_div(height, step) * step + extra, ceil_div(width, step) * step + extra


def pad_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``x`` zero-padded at the bottom and right to ``height`` x ``width`` (``x`` itself when it has that size)."""
    short_h, short_w = height - x.shape[-2], width - x.shape[-1]
    if exporting():  # sizes are traced values: record the pad whatever they are now
        return F.pad(x, (0, short_w, 0, short_h))
    if short_h < 0 or short_w < 0:
        raise ValueError(f"cannot pad a {x.shape[-2]}x{x.shape[-1]} input to {height}x{width}")
    return F.pad(x, (0, short_w, 0, short_h)) if short_h or short_w else x


def fit(feature_map: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Crop, or zero-pad at the bottom and right, an NCHW map to ``height`` x ``width``.

    One constant pad, whose negative amounts crop: its output is ``height`` x ``width`` by
    construction, which ``torch.export`` states for symbolic sizes as they are (a slice
    ``[:height]`` would make it compare ``height`` with the map's size and keep the
    example's answer as a guard)."""
    if not exporting() and tuple(feature_map.shape[-2:]) == (height, width):
        return feature_map
    return F.pad(feature_map, (0, width - feature_map.shape[-1], 0, height - feature_map.shape[-2]))


def fit_to_input(
    maps: Mapping[str, torch.Tensor], strides: Mapping[str, int], height: int, width: int
) -> Dict[str, torch.Tensor]:
    """Every map fitted to ``ceil(height / stride)`` x ``ceil(width / stride)``."""
    return {
        name: fit(m, ceil_div(height, strides[name]), ceil_div(width, strides[name]))
        for name, m in maps.items()
    }


def padding_constraints(
    size_divisibility: int, inherited: Mapping[str, int] = None
) -> Dict[str, int]:
    """detectron2 main's ``padding_constraints``: the size divisibility, on top of whatever
    a parent class states (detectron2's FPN adds ``square_size``). v0.6 never reads it."""
    return {**(inherited or {}), "size_divisibility": int(size_divisibility)}
