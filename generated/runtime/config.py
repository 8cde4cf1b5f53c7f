"""Config keys of the generated backbones, and their validation.

``add_timm_config(cfg)`` adds the keys the earlier timm wrappers used, so their YAML
keeps working::

    MODEL.BACKBONE.CONFIG.OUT_FEATURES   timm module names (or feature names) to return
    MODEL.BACKBONE.CONFIG.REMAPS         output names for them (default: res<k> / stage<i>)
    MODEL.BACKBONE.CONFIG.STRIDES        their strides (checked against the model)
    MODEL.BACKBONE.CONFIG.CHANNELS       their channels (checked against the model)
    MODEL.BACKBONE.CONFIG.REMOVE_LAYERS  timm modules replaced by nn.Identity
    MODEL.BACKBONE.CONFIG.PRETRAINED     unset/false, true (timm's hub) or a checkpoint path
    MODEL.BACKBONE.CONFIG.IMG_SIZE       the square side a fixed-size model is built at (0: the
                                         model's default, a detection size; checkpoints saved at
                                         its pretrained size are resampled to it)
    MODEL.BACKBONE.CONFIG.OUTPUT_STRIDE  0 (the model's strides), or 16 or 8 for a model that
                                         timm dilates (the class's OUTPUT_STRIDES): every
                                         level's stride is capped at it (DeepLab)
    MODEL.BACKBONE.CONFIG.ACTIVATION_CHECKPOINT  recompute each block in the backward pass
    MODEL.BACKBONE.CONFIG.DROP_PATH_RATE timm's stochastic depth (models that have it)
    MODEL.BACKBONE.CONFIG.NORM           the backbone's batch norms: '', BN, FrozenBN, SyncBN
    MODEL.BACKBONE.CONFIG.TOP_BLOCK      the FPN variant's levels above its coarsest: maxpool,
                                         p6p7 or p6p7_fpn ('': p6p7 for RetinaNet, else maxpool;
                                         see runtime/fpn.py)
    INPUT.FIXED_INPUT_SIZE               pad every image to the model's input size inside the
                                         backbone (unset: only for fixed-size models)

Empty lists mean "the model's defaults". Every bad value fails when the backbone is
built, with a ValueError naming the key and the valid values.
"""

import os
from typing import Optional, Sequence, Tuple, Union

__all__ = [
    "add_timm_config",
    "backbone_kwargs_from_config",
    "dilated",
    "resolve_fixed_input_size",
    "resolve_img_size",
    "resolve_out_features",
    "resolve_output_stride",
    "resolve_pretrained",
]

KEY = "MODEL.BACKBONE.CONFIG"
_OFF = ("", "false", "none", "0", "no")
_HUB = ("true", "timm", "hub", "1", "yes")


def add_timm_config(cfg) -> None:
    """Extend a detectron2 ``CfgNode`` with the generated backbones' keys (idempotent)."""
    from detectron2.config import CfgNode as CN

    if "CONFIG" not in cfg.MODEL.BACKBONE:
        cfg.MODEL.BACKBONE.CONFIG = CN()
    node = cfg.MODEL.BACKBONE.CONFIG
    for key in ("OUT_FEATURES", "REMAPS", "STRIDES", "CHANNELS", "REMOVE_LAYERS"):
        if key not in node:
            node[key] = []
    if "PRETRAINED" not in node:
        # None accepts a bool or a path from YAML or the command line alike.
        node.PRETRAINED = None
    if "IMG_SIZE" not in node:
        node.IMG_SIZE = 0
    if "TOP_BLOCK" not in node:
        node.TOP_BLOCK = ""
    if "OUTPUT_STRIDE" not in node:
        node.OUTPUT_STRIDE = 0
    if "ACTIVATION_CHECKPOINT" not in node:
        node.ACTIVATION_CHECKPOINT = False
    if "DROP_PATH_RATE" not in node:
        node.DROP_PATH_RATE = 0.0
    if "NORM" not in node:
        node.NORM = ""
    if "BACKBONE_LR_DECAY" not in cfg.SOLVER:
        # Layer-wise lr decay of the generated backbones (runtime/optim.py); 1.0 = off.
        cfg.SOLVER.BACKBONE_LR_DECAY = 1.0
    if "FIXED_INPUT_SIZE" not in cfg.INPUT:
        # None: the model's own rule (true for fixed-size models), and accepts a bool from YAML.
        cfg.INPUT.FIXED_INPUT_SIZE = None


def _listing(values) -> str:
    return ", ".join(str(v) for v in values)


def resolve_output_stride(cls, value) -> int:
    """0 (the model's own strides) or one of ``cls.OUTPUT_STRIDES``."""
    if value in (None, 0, "", "0"):
        return 0
    if isinstance(value, bool) or value not in cls.OUTPUT_STRIDES:
        valid = ", ".join(str(v) for v in (0,) + tuple(cls.OUTPUT_STRIDES))
        why = (
            ""
            if cls.OUTPUT_STRIDES
            else f" (timm cannot dilate {cls.TIMM_MODEL}: it takes no output_stride)"
        )
        raise ValueError(
            f"{KEY}.OUTPUT_STRIDE: {value!r} is not valid for {cls.TIMM_MODEL}; valid: {valid}{why}"
        )
    return int(value)


def dilated(features, output_stride: int) -> Tuple:
    """``features`` with every stride capped at ``output_stride`` (0: as they are)."""
    if not output_stride:
        return tuple(features)
    return tuple(f._replace(stride=min(f.stride, output_stride)) for f in features)


def resolve_out_features(
    cls,
    out_features: Optional[Sequence[str]],
    remaps: Optional[Sequence[str]],
    strides: Optional[Sequence[int]],
    channels: Optional[Sequence[int]],
    output_stride: int = 0,
) -> Tuple:
    """The (output name, Feature) pairs a backbone returns, finest first, with their
    strides at ``output_stride``.

    Features are named by their generated name (``res4``) or timm module (``layer3``).
    """
    features = dilated(cls.FEATURES, output_stride)
    by_key = {feature.name: feature for feature in features}
    modules = [feature.module for feature in features]
    for feature in features:
        if modules.count(feature.module) == 1:  # a module holding several levels is ambiguous
            by_key.setdefault(feature.module, feature)
    names = list(out_features) if out_features else list(cls.OUT_FEATURES)
    valid = _listing(
        f"{f.module} ({f.name})" if modules.count(f.module) == 1 else f.name for f in features
    )
    chosen = []
    for name in names:
        if name not in by_key:
            raise ValueError(
                f"{KEY}.OUT_FEATURES: {name!r} is not a feature of {cls.TIMM_MODEL}; valid: {valid}"
            )
        chosen.append(by_key[name])
    if len({f.index for f in chosen}) != len(chosen):
        raise ValueError(f"{KEY}.OUT_FEATURES: {names} names a feature twice; valid: {valid}")
    for key, given in (("REMAPS", remaps), ("STRIDES", strides), ("CHANNELS", channels)):
        if given and len(given) != len(names):
            raise ValueError(
                f"{KEY}.{key} has {len(given)} entries but {KEY}.OUT_FEATURES has {len(names)} "
                f"({_listing(names)}): give one per feature, or leave {key} empty"
            )
    outputs = list(remaps) if remaps else [f.name for f in chosen]
    for output in outputs:
        if not isinstance(output, str) or not output.isidentifier():
            raise ValueError(
                f"{KEY}.REMAPS: {output!r} is not a valid feature name (an identifier)"
            )
    if len(set(outputs)) != len(outputs):
        raise ValueError(f"{KEY}.REMAPS: {outputs} repeats a name; each output needs its own")
    for key, given, attr in (("STRIDES", strides, "stride"), ("CHANNELS", channels, "channels")):
        for feature, value in zip(chosen, given or ()):
            if int(value) != getattr(feature, attr):
                expected = _listing(getattr(f, attr) for f in chosen)
                raise ValueError(
                    f"{KEY}.{key}: {value} contradicts {cls.TIMM_MODEL}, whose {feature.module} "
                    f"({feature.name}) has {attr} {getattr(feature, attr)}; valid for "
                    f"{_listing(f.module for f in chosen)}: [{expected}]"
                )
    pairs = sorted(zip(outputs, chosen), key=lambda pair: pair[1].index)
    return tuple(pairs)


def resolve_pretrained(value: Union[bool, str, None]) -> Union[bool, str]:
    """False, True (timm's hub) or an existing checkpoint path."""
    if value is None or value is False:
        return False
    if value is True:
        return True
    if isinstance(value, str):
        if value.strip().lower() in _OFF:
            return False
        if value.strip().lower() in _HUB:
            return True
        path = os.path.expanduser(value)
        if not os.path.isfile(path):
            raise ValueError(
                f"{KEY}.PRETRAINED: {value!r} is not a file; valid: false, true (timm's hub weights) "
                "or the path of a timm checkpoint (.pth, .pt, .bin, .safetensors)"
            )
        return path
    raise ValueError(
        f"{KEY}.PRETRAINED: {value!r} is not valid; valid: false, true (timm's hub weights) "
        "or the path of a timm checkpoint"
    )


def resolve_img_size(cls, value) -> int:
    """The square side timm builds the model at (0: timm's own default size).

    Only fixed-size models that timm can build at other sizes take one: their pretrained
    side or a multiple of ``cls.IMG_SIZE_MULTIPLE``, default ``cls.IMG_SIZE`` (a
    detection size).
    """
    if value in (None, "", 0, [], ()):
        return cls.IMG_SIZE
    if isinstance(value, (list, tuple)) and len(value) == 2 and value[0] == value[1]:
        value = value[0]  # [S, S] reads as S
    side = cls.INPUT_SIZE[0]
    if not cls.IMG_SIZE_MULTIPLE:
        why = (
            "it takes any input size"
            if not cls.FIXED_INPUT_SIZE
            else f"it stays at {side}x{side}: {cls.FIXED_REASON}"
        )
        raise ValueError(
            f"{KEY}.IMG_SIZE: {value!r} is not valid for {cls.TIMM_MODEL}; valid: 0 (the model's own size), since {why}"
        )
    if value == side:  # its pretrained size: always one timm builds it at
        return value
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value <= 0
        or value % cls.IMG_SIZE_MULTIPLE
    ):
        raise ValueError(
            f"{KEY}.IMG_SIZE: {value!r} is not valid for {cls.TIMM_MODEL}; valid: 0 (the default, "
            f"{cls.IMG_SIZE}), its pretrained size {side}, or a square side that is a multiple of "
            f"{cls.IMG_SIZE_MULTIPLE}, such as {cls.IMG_SIZE}"
        )
    return value


def resolve_fixed_input_size(
    cls, value: Optional[bool], img_size: int = 0
) -> Optional[Tuple[int, int]]:
    """The (H, W) every input is padded to (the build size of a fixed-size model), or
    None to pass inputs as they are."""
    if value is None:
        value = cls.FIXED_INPUT_SIZE
    if not isinstance(value, bool):
        raise ValueError(
            f"INPUT.FIXED_INPUT_SIZE: {value!r} is not valid; valid: true, false, or unset"
        )
    height, width = (img_size, img_size) if img_size else tuple(cls.INPUT_SIZE)
    if not value and cls.FIXED_INPUT_SIZE:
        raise ValueError(
            f"INPUT.FIXED_INPUT_SIZE: false, but {cls.TIMM_MODEL} built at {height}x{width} only takes that size "
            "(timm has no dynamic input size for it); valid: true (inputs up to that size are padded to it), or unset"
        )
    return (height, width) if value else None


def backbone_kwargs_from_config(cls, cfg, input_shape=None) -> dict:
    """Keyword arguments of a generated backbone from a detectron2 config."""
    node = cfg.MODEL.BACKBONE.get("CONFIG", None)

    def get(key, default):
        value = node.get(key, default) if node is not None else default
        return list(value) if isinstance(value, (list, tuple)) else value

    channels = getattr(input_shape, "channels", None) or len(cfg.MODEL.PIXEL_MEAN)
    return dict(
        out_features=get("OUT_FEATURES", []) or None,
        remaps=get("REMAPS", []) or None,
        strides=get("STRIDES", []) or None,
        channels=get("CHANNELS", []) or None,
        freeze_at=cfg.MODEL.BACKBONE.FREEZE_AT,
        pretrained=get("PRETRAINED", None),
        img_size=get("IMG_SIZE", 0),
        remove_layers=get("REMOVE_LAYERS", []),
        in_chans=channels,
        fixed_input_size=cfg.INPUT.get("FIXED_INPUT_SIZE", None),
        output_stride=get("OUTPUT_STRIDE", 0),
        activation_checkpoint=get("ACTIVATION_CHECKPOINT", False),
        drop_path_rate=get("DROP_PATH_RATE", 0.0),
        norm=get("NORM", ""),
    )
