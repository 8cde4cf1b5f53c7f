"""Training options of every generated backbone: activation checkpointing, drop path and
the batch norm it trains with, each one rule for the whole catalog.

- :func:`checkpoint_blocks`: the blocks are the elements of the outermost sequential
  containers of timm's model (``layer1``'s bottlenecks, ``stages_0.blocks``, a ViT's
  ``blocks``). Each runs under ``torch.utils.checkpoint`` (non-reentrant, so it works
  under DistributedDataParallel and with frozen parameters) while training with
  gradients: its activations are recomputed in the backward pass instead of kept. Only
  ``forward`` is wrapped, so parameter names and checkpoints stay as they are. timm's own
  ``set_grad_checkpointing`` is not used: its features wrappers do not all offer it
  (``FeatureGetterNet`` has none).
- drop path: timm's ``drop_path_rate``, checked to have reached a ``DropPath`` layer.
- :func:`convert_norm`: timm's own conversions, which keep the activation that timm fuses
  into ``BatchNormAct2d`` (torch's and detectron2's drop it).
"""

import functools
from typing import List

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

__all__ = ["NORMS", "checkpoint_blocks", "check_drop_path", "convert_norm"]

#: ``MODEL.BACKBONE.CONFIG.NORM``: as built, BatchNorm, frozen, synchronised across processes.
NORMS = ("", "BN", "FrozenBN", "SyncBN")
_CONTAINERS = (nn.Sequential, nn.ModuleList)


def _blocks(root: nn.Module) -> List[nn.Module]:
    """The elements of the outermost sequential containers under ``root``."""
    found = []
    for child in root.children():
        if isinstance(child, _CONTAINERS) and len(child) > 0:
            found.extend(block for block in child if any(True for _ in block.parameters()))
        else:
            found.extend(_blocks(child))
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
