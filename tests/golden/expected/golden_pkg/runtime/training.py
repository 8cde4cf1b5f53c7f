"""Training options of every generated backbone: activation checkpointing, drop path and
the batch norm it trains with, each one rule for the whole catalog; and the one memory rule
that is always on, index tables shared.

- :func:`checkpoint_blocks`: the blocks are the elements of the sequential containers of
  timm's model that hold two modules of modules or more (``layer1``'s bottlenecks,
  ``stages_0.blocks``, a ViT's ``blocks``), the innermost such: a container of stages
  that hold blocks of their own (MViTv2's ``stages``, an EfficientNet's ``blocks``) is
  entered, so that each block is one recomputation, not its whole stage. Each runs
  under ``torch.utils.checkpoint`` (non-reentrant, so it works under
  DistributedDataParallel and with frozen parameters) while training with gradients:
  its activations are recomputed in the backward pass instead of kept. Only
  ``forward`` is wrapped, so parameter names and checkpoints stay as they are. timm's own
  ``set_grad_checkpointing`` is not used: its features wrappers do not all offer it
  (``FeatureGetterNet`` has none).
- drop path: timm's ``drop_path_rate``, checked to have reached a ``DropPath`` layer.
- :func:`convert_norm`: timm's own conversions, which keep the activation that timm fuses
  into ``BatchNormAct2d`` (torch's and detectron2's drop it).
- :func:`share_index_tables`: the integer tables timm derives per block from the grid, equal
  across blocks, held once.
"""

import functools
from typing import Dict, List, Tuple

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

__all__ = ["NORMS", "checkpoint_blocks", "check_drop_path", "convert_norm", "share_index_tables"]

#: ``MODEL.BACKBONE.CONFIG.NORM``: as built, BatchNorm, frozen, synchronised across processes.
NORMS = ("", "BN", "FrozenBN", "SyncBN")
_CONTAINERS = (nn.Sequential, nn.ModuleList)


def _composite(module: nn.Module) -> bool:
    """A module of modules, with parameters: a block or a stage, not a bare layer."""
    return any(True for _ in module.children()) and any(True for _ in module.parameters())


def _holds_blocks(module: nn.Module) -> bool:
    """A sequential container of at least two composite elements: of blocks, or of stages."""
    return isinstance(module, _CONTAINERS) and sum(_composite(element) for element in module) >= 2


def _blocks(root: nn.Module) -> List[nn.Module]:
    """The blocks under ``root`` (see the module docstring)."""
    found = []
    for child in root.children():
        found.extend(_elements(child) if _holds_blocks(child) else _blocks(child))
    return found


def _elements(container: nn.Module) -> List[nn.Module]:
    """Each element of ``container`` that has parameters, or the blocks it holds (a stage)."""
    found = []
    for element in container:
        inner = _elements(element) if _holds_blocks(element) else _blocks(element)
        found.extend(inner or ([element] if any(True for _ in element.parameters()) else []))
    return found


def _checkpointed(forward, module: nn.Module, *args, **kwargs):
    if module.training and torch.is_grad_enabled():
        return checkpoint(forward, *args, use_reentrant=False, **kwargs)
    return forward(*args, **kwargs)


def checkpoint_blocks(root: nn.Module) -> int:
    """Checkpoint every block of ``root`` (see the module docstring); returns how many."""
    blocks = _blocks(root)
    for block in blocks:
        block.forward = functools.partial(_checkpointed, block.forward, block)
    return len(blocks)


def check_drop_path(model: nn.Module, rate: float, name: str) -> None:
    """A positive ``rate`` must have reached one of timm's drop-path layers."""
    from timm.layers import DropPath

    if rate and not any(isinstance(m, DropPath) and m.drop_prob > 0 for m in model.modules()):
        raise ValueError(
            f"MODEL.BACKBONE.CONFIG.DROP_PATH_RATE: {rate!r} is not valid for {name}, whose timm model has no "
            "drop path (stochastic depth); valid: 0.0"
        )


def convert_norm(model: nn.Module, norm: str, name: str) -> nn.Module:
    """``model`` with its batch norms as ``norm`` asks (:data:`NORMS`)."""
    if norm not in NORMS:
        raise ValueError(
            f"MODEL.BACKBONE.CONFIG.NORM: {norm!r} is not valid for {name}; valid: '' (as timm builds it), "
            + ", ".join(NORMS[1:])
        )
    if norm == "FrozenBN":
        from timm.layers import freeze_batch_norm_2d

        return freeze_batch_norm_2d(model)
    if norm == "SyncBN":
        from timm.layers import convert_sync_batchnorm

        return convert_sync_batchnorm(model)
    return model


def share_index_tables(root: nn.Module) -> int:
    """Make equal index tables one tensor; returns how many buffers now use another's.

    An index table is an integer buffer registered with ``persistent=False``: derived from
    the grid, never learned, not in the state dict (so no checkpoint changes). timm builds
    one per block, and blocks over the same grid build equal ones: BEiT's relative-position
    index over the 4096 tokens of a 1024 square is 4097 x 4097 int64, 134 MB a block and
    1.5 GB for beit_base's 12 blocks, held on the GPU beside the activations. timm rewrites
    a table in place only with its block's own grid (``_init_buffers``), which is the
    same for every block sharing it. ``.to(device)`` copies each buffer on its own, so
    :class:`TimmBackbone` shares them again after every move (``_apply``).
    """
    kept: Dict[Tuple[torch.dtype, torch.device, Tuple[int, ...]], List[torch.Tensor]] = {}
    shared = 0
    for module in root.modules():
        for name in sorted(module._non_persistent_buffers_set):
            table = module._buffers.get(name)
            if table is None or table.is_floating_point() or table.is_complex() or table.is_meta:
                continue
            equal = kept.setdefault((table.dtype, table.device, tuple(table.shape)), [])
            same = next(
                (
                    kept_table
                    for kept_table in equal
                    if kept_table is table or torch.equal(kept_table, table)
                ),
                None,
            )
            if same is None:
                equal.append(table)
            elif same is not table:
                module._buffers[name] = same
                shared += 1
    return shared
