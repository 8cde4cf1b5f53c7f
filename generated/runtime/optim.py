"""Optimizer facts of every generated backbone: layer-wise learning-rate decay and the
parameters exempt from weight decay, from timm's own knowledge of each model.

Each generated module states, as introspected once from timm:

- ``LAYERS``: the layer of every parameter of timm's features_only model, by the shortest
  module path whose parameters share one (timm's ``group_matcher(coarse=False)``, the
  layering timm's own layer-wise decay uses), numbered ``0 .. NUM_LAYERS - 1`` from the
  input; a ViT's stem (patch and position embeddings, class token) is 0 and block ``i``
  is ``i + 1``.
- ``NO_WEIGHT_DECAY``: the parameters timm exempts from weight decay (``no_weight_decay()``),
  by name inside the features_only model, numbered parts as ``*``.

One rule turns a layer into a learning-rate factor, ViTDet's (``get_vit_lr_decay_rate``):
``decay ** (NUM_LAYERS - layer)`` for the backbone's parameters and 1 for everything
else (neck, heads). On a ViT of depth ``d``, ``NUM_LAYERS`` is ``d + 1`` and the factors
are ViTDet's with ``num_layers=d``.

Two ways in:

- :func:`layer_lr_factor_func` (``Backbone.lr_factor_func(decay)``): a drop-in for ViTDet's
  ``optimizer.params.lr_factor_func``, on detectron2 main, from full parameter names.
- :func:`optimizer_params`: detectron2's ``get_default_optimizer_params`` with the same
  arguments, on v0.6 and main alike (v0.6 has no ``lr_factor_func``), plus ``lr_decay``
  and the weight-decay exemptions of every generated backbone inside the model. This is
  what ``tools/train_net.py`` uses for ``SOLVER.BACKBONE_LR_DECAY`` and what the recipe
  seeds name in ``optimizer.params``.
"""

import functools
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

__all__ = ["layer_lr_factor_func", "layer_of", "no_weight_decay", "optimizer_params"]

#: The attribute that holds timm's features_only model inside every generated backbone.
BODY = "body"


def _parts_match(pattern: str, name: str) -> bool:
    """Whether ``name`` is ``pattern`` with each ``*`` part a number."""
    wanted, parts = pattern.split("."), name.split(".")
    return len(wanted) == len(parts) and all(
        w == p or (w == "*" and p.isdigit()) for w, p in zip(wanted, parts)
    )


def layer_of(backbone_cls, name: str) -> Optional[int]:
    """The layer of the parameter ``name`` of the features_only model (as in
    ``backbone.body.named_parameters()``), or None when it is not one of its parameters."""
    for path, layer in backbone_cls.LAYERS:
        if name == path or name.startswith(path + "."):
            return layer
    return None


def no_weight_decay(backbone_cls, name: str) -> bool:
    """Whether timm exempts the features_only parameter ``name`` from weight decay."""
    return any(_parts_match(pattern, name) for pattern in backbone_cls.NO_WEIGHT_DECAY)


def _check_decay(backbone_cls, decay: float) -> float:
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 < decay <= 1.0:
        raise ValueError(
            f"layer-wise lr decay: {decay!r} is not valid; valid: a number in (0, 1], 1.0 = off"
        )
    if decay != 1.0 and not backbone_cls.LAYERS:
        raise ValueError(
            f"layer-wise lr decay {decay!r} is not possible for {backbone_cls.TIMM_MODEL}: "
            f"{backbone_cls.LAYERS_REASON or 'no layering was recorded'}; valid: 1.0 (off)"
        )
    return float(decay)


def _relative_names(name: str) -> List[str]:
    """The names ``name`` may have inside a backbone's features_only model: what follows
    each ``body.`` that starts a part of it."""
    marker = BODY + "."
    found, start = [], 0
    while True:
        at = name.find(marker, start)
        if at < 0:
            return found
        if at == 0 or name[at - 1] == ".":
            found.append(name[at + len(marker) :])
        start = at + 1


def _factor(backbone_cls, decay: float, name: str) -> float:
    """ViTDet's factor for the full parameter name ``name`` of a model holding the backbone."""
    for relative in _relative_names(name):
        layer = layer_of(backbone_cls, relative)
        if layer is not None:
            return decay ** (backbone_cls.NUM_LAYERS - layer)
    return 1.0


def layer_lr_factor_func(backbone_cls, decay: float) -> Callable[[str], float]:
    """``name -> lr factor`` for full parameter names (``backbone.net.body.model.blocks.3.mlp.fc1.weight``):
    ``decay ** (NUM_LAYERS - layer)`` for the backbone's parameters, 1 for the rest.
    ViTDet's ``optimizer.params.lr_factor_func`` takes it as it takes
    ``partial(get_vit_lr_decay_rate, num_layers=12, lr_decay_rate=0.7)``."""
    return functools.partial(_factor, backbone_cls, _check_decay(backbone_cls, decay))


def _backbones(model: torch.nn.Module) -> List[Tuple[str, Any]]:
    """(path of its features_only model, backbone) for every generated backbone in ``model``."""
    from .backbone import TimmBackbone

    return [
        (f"{path}.{BODY}." if path else f"{BODY}.", module)
        for path, module in model.named_modules()
        if isinstance(module, TimmBackbone)
    ]


def optimizer_params(
    model: torch.nn.Module,
    base_lr: Optional[float] = None,
    weight_decay: Optional[float] = None,
    weight_decay_norm: Optional[float] = None,
    bias_lr_factor: Optional[float] = 1.0,
    weight_decay_bias: Optional[float] = None,
    overrides: Optional[Dict[str, Dict[str, float]]] = None,
    lr_factor_func: Optional[Callable[[str], float]] = None,
    lr_decay: float = 1.0,
) -> List[Dict[str, Any]]:
    """detectron2's ``get_default_optimizer_params(model, ...)``, same arguments and result,
    on detectron2 v0.6 and main; then, for every generated backbone inside ``model``, the
    parameters timm exempts from weight decay get none and, with ``lr_decay`` below 1, each backbone parameter's lr is scaled by
    ``lr_decay ** (NUM_LAYERS - layer)``. ``lr_factor_func(name)`` (ViTDet's argument on
    main) scales every parameter's lr as on main."""
    from detectron2.solver.build import get_default_optimizer_params, reduce_param_groups

    backbones = _backbones(model)
    for _, backbone in backbones:
        _check_decay(type(backbone), lr_decay)
    if (lr_decay != 1.0 or lr_factor_func is not None) and base_lr is None:
        raise ValueError(
            "optimizer_params: lr_decay and lr_factor_func need base_lr (the lr they scale)"
        )
    groups = get_default_optimizer_params(
        model,
        base_lr=base_lr,
        weight_decay=weight_decay,
        weight_decay_norm=weight_decay_norm,
        bias_lr_factor=bias_lr_factor,
        weight_decay_bias=weight_decay_bias,
        overrides=overrides,
    )
    names = {id(param): name for name, param in model.named_parameters()}
    expanded = []
    for group in groups:
        for param in group["params"]:
            hyper = {key: value for key, value in group.items() if key != "params"}
            name = names[id(param)]
            if lr_factor_func is not None:
                hyper["lr"] *= lr_factor_func(name)
            for prefix, backbone in backbones:
                if not name.startswith(prefix):
                    continue
                relative = name[len(prefix) :]
                if lr_decay != 1.0:
                    layer = layer_of(type(backbone), relative)
                    layer = backbone.NUM_LAYERS - 1 if layer is None else layer
                    hyper["lr"] *= lr_decay ** (backbone.NUM_LAYERS - layer)
                if no_weight_decay(type(backbone), relative):
                    hyper["weight_decay"] = 0.0
            expanded.append({"params": [param], **hyper})
    return reduce_param_groups(expanded)
