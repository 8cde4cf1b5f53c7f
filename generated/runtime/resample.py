"""Checkpoints saved at a model's pretrained size, loaded into the model built at another size.

A fixed-size model built for detection (``MODEL.BACKBONE.CONFIG.IMG_SIZE``) has
parameters whose shapes follow the input grid: absolute position embeddings,
relative-position and attention-bias tables, 1-D relative offsets. Each generated module
lists them as ``GRID_PARAMS`` (measured by the generator), and :func:`resample_state_dict`
resamples a checkpoint's values to the shapes of the model being built, as ViTDet
interpolates the position embeddings of a 224-pixel checkpoint. Every other parameter must
already have the model's shape; one that does not fails with a message naming it.
"""

import fnmatch
import math
from typing import Dict, Mapping, NamedTuple, Sequence, Tuple

import torch
import torch.nn.functional as F

__all__ = ["GridParam", "resample", "resample_state_dict"]


class GridParam(NamedTuple):
    """A parameter sized by the input grid and how it is laid out.

    ``kind``: "tokens", a flattened square grid along ``dims[0]`` after ``extra`` entries
    (class tokens); "table", the same with the ``extra`` entries after it (BEiT's relative
    distances to the class token); "grid", a grid on the two dims ``dims``; "line", 1-D
    relative offsets along ``dims[0]``.
    """

    pattern: str  # fnmatch pattern over state-dict keys
    kind: str
    dims: Tuple[int, ...]
    extra: int = 0


def _resize_2d(grid: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """(C, h, w) -> (C, *size), bicubic, in float32."""
    out = F.interpolate(
        grid[None].float(), size=size, mode="bicubic", align_corners=False, antialias=True
    )
    return out[0].to(grid.dtype)


def _resize_1d(line: torch.Tensor, length: int) -> torch.Tensor:
    """(C, n) -> (C, length), linear, in float32."""
    return F.interpolate(line[None].float(), size=length, mode="linear", align_corners=False)[0].to(
        line.dtype
    )


def _side(count: int, key: str) -> int:
    side = math.isqrt(count)
    if side * side != count:
        raise ValueError(f"{key}: {count} grid entries are not a square grid")
    return side


def _resample_flat(
    value: torch.Tensor, target: Sequence[int], param: GridParam, key: str
) -> torch.Tensor:
    """A square grid flattened along one dim, with ``extra`` entries before or after it."""
    dim, extra = param.dims[0], param.extra
    x = value.movedim(dim, 0)
    before, after = (extra, 0) if param.kind == "tokens" else (0, extra)
    head, grid, tail = x[:before], x[before : x.shape[0] - after], x[x.shape[0] - after :]
    old, new = _side(grid.shape[0], key), _side(target[dim] - extra, key)
    rest = grid.shape[1:]
    grid = grid.reshape(old, old, -1).permute(2, 0, 1)
    grid = _resize_2d(grid, (new, new)).permute(1, 2, 0).reshape(new * new, *rest)
    return torch.cat([head, grid, tail]).movedim(0, dim)


def _resample_grid(
    value: torch.Tensor, target: Sequence[int], param: GridParam, key: str
) -> torch.Tensor:
    first, second = param.dims
    x = value.movedim((first, second), (-2, -1))
    rest = x.shape[:-2]
    x = _resize_2d(x.reshape(-1, *x.shape[-2:]), (target[first], target[second]))
    return x.reshape(*rest, *x.shape[-2:]).movedim((-2, -1), (first, second))


def _resample_line(
    value: torch.Tensor, target: Sequence[int], param: GridParam, key: str
) -> torch.Tensor:
    dim = param.dims[0]
    x = value.movedim(dim, -1)
    rest = x.shape[:-1]
    x = _resize_1d(x.reshape(-1, x.shape[-1]), target[dim])
    return x.reshape(*rest, x.shape[-1]).movedim(-1, dim)


_RESAMPLERS = {
    "tokens": _resample_flat,
    "table": _resample_flat,
    "grid": _resample_grid,
    "line": _resample_line,
}


def resample(
    value: torch.Tensor, target: Sequence[int], param: GridParam, key: str = ""
) -> torch.Tensor:
    """``value`` resampled to the shape ``target`` as ``param`` lays it out."""
    out = _RESAMPLERS[param.kind](value, tuple(target), param, key or param.pattern)
    if tuple(out.shape) != tuple(target):
        raise ValueError(
            f"{key or param.pattern}: resampled to {tuple(out.shape)}, the model needs {tuple(target)}"
        )
    return out


def resample_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    target_shapes: Mapping[str, Sequence[int]],
    grid_params: Sequence[GridParam],
    what: str,
) -> Dict[str, torch.Tensor]:
    """``state_dict`` with every grid-sized parameter resampled to ``target_shapes``.

    A key whose shape differs from the target and that no ``grid_params`` pattern names
    raises ValueError naming it (``what`` says which model and size were asked for).
    Keys the target lacks (a classifier head) are kept for the loader to judge.
    """
    out = {}
    for key, value in state_dict.items():
        target = target_shapes.get(key)
        if target is None or tuple(value.shape) == tuple(target):
            out[key] = value
            continue
        param = next((p for p in grid_params if fnmatch.fnmatchcase(key, p.pattern)), None)
        if param is None:
            patterns = ", ".join(p.pattern for p in grid_params) or "none"
            raise ValueError(
                f"{key} is {list(value.shape)} in the checkpoint but {list(target)} in {what}, and it is not "
                f"a grid-sized parameter that can be resampled (those are: {patterns})"
            )
        out[key] = resample(value, target, param, key)
    return out
