"""The base class of every generated backbone.

A generated module subclasses :class:`TimmBackbone` and states every fact about its
model as class constants (feature levels, channels, strides, layout, input rules, pixel
statistics). This class turns those facts into a detectron2 ``Backbone``: it creates the
timm model with ``features_only``, checks that timm still builds what the constants
declare, freezes the stem and early stages on request and converts the outputs to
detectron2's named NCHW maps.
"""

import math
from typing import ClassVar, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from detectron2.config import configurable
from detectron2.modeling import Backbone

from .config import (
    backbone_kwargs_from_config,
    resolve_fixed_input_size,
    resolve_out_features,
    resolve_pretrained,
)
from .weights import create_timm_features

__all__ = ["Feature", "TimmBackbone", "stage_partition"]

#: Levels finer than this stride belong to the stem (detectron2's stages start at res2).
STAGE_MIN_STRIDE = 4


class Feature(NamedTuple):
    """One feature level of a timm model."""

    name: str  # output name in detectron2 (res2, res3, ... or stage<i>)
    module: str  # timm's name of the module whose output this is
    path: str  # that module's path inside timm's features_only model
    index: int  # timm's feature_info index (the out_indices entry)
    channels: int
    stride: int


def stage_partition(root: torch.nn.Module, stage_paths: Sequence[str]) -> List[Tuple[str, int]]:
    """Split ``root`` into ordered parts, each tagged 0 (stem) or k (stage k).

    Parts are direct children, expanded wherever a stage module sits deeper inside a
    child, plus parameters held directly by an expanded module (a ViT's ``pos_embed``).
    Everything before the first stage module is the stem; stage k runs from after stage
    k-1's module up to and including stage k's module; anything after the last stage
    belongs to the last stage.
    """
    parts: List[str] = []

    def walk(module: torch.nn.Module, prefix: str) -> None:
        parts.extend(prefix + name for name, _ in module.named_parameters(recurse=False))
        for name, child in module.named_children():
            path = prefix + name
            if any(stage.startswith(path + ".") for stage in stage_paths):
                walk(child, path + ".")
            else:
                parts.append(path)

    walk(root, "")
    tagged: List[Tuple[str, int]] = []
    current = 0
    for path in parts:
        hits = [
            k
            for k, stage in enumerate(stage_paths, 1)
            if stage == path or stage.startswith(path + ".")
        ]
        if hits:
            current = max(hits)
            tagged.append((path, current))
        else:
            tagged.append((path, min(current + 1, len(stage_paths)) if current else 0))
    return tagged


def _fit(feature_map: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Crop, or zero-pad at the bottom and right, an NCHW map to ``height`` x ``width``."""
    feature_map = feature_map[..., :height, :width]
    short_h, short_w = height - feature_map.shape[-2], width - feature_map.shape[-1]
    if short_h or short_w:
        feature_map = torch.nn.functional.pad(feature_map, (0, short_w, 0, short_h))
    return feature_map


class TimmBackbone(Backbone):
    """A timm model as a detectron2 backbone; subclasses state the model's facts."""

    #: timm architecture name.
    TIMM_MODEL: ClassVar[str]
    #: Every feature level timm exposes, finest first.
    FEATURES: ClassVar[Tuple[Feature, ...]]
    #: Default outputs of the plain backbone.
    OUT_FEATURES: ClassVar[Tuple[str, ...]]
    #: Default inputs of the FPN variant: powers of two, each twice the previous, for
    #: detectron2's FPN; or one level, for the simple feature pyramid.
    FPN_IN_FEATURES: ClassVar[Tuple[str, ...]]
    #: How timm returns the maps: "NCHW", or "NHWC" (permuted here).
    LAYOUT: ClassVar[str] = "NCHW"
    #: Inputs whose height and width are multiples of this are accepted.
    SIZE_DIVISIBILITY: ClassVar[int]
    #: Pretrained input size (H, W), and whether the model only accepts that size (no
    #: dynamic size in timm): then every input is padded to it inside the backbone.
    INPUT_SIZE: ClassVar[Tuple[int, int]]
    FIXED_INPUT_SIZE: ClassVar[bool] = False
    #: timm's pretrained_cfg statistics, RGB, 0..1 scale.
    PIXEL_MEAN: ClassVar[Tuple[float, float, float]]
    PIXEL_STD: ClassVar[Tuple[float, float, float]]
    #: Pixels of zero padding added at the bottom and right of every input, the maps then
    #: cropped to ceil(input / stride): for models whose unpadded convolutions shrink them.
    INPUT_PAD: ClassVar[int] = 0
    #: 1 when timm's own padding makes some maps a row or column off ceil(input / stride):
    #: they are cropped or zero-padded to it (detectron2's FPN adds maps of exactly
    #: twice the size).
    SIZE_SLACK: ClassVar[int] = 0
    #: Extra keyword arguments for ``timm.create_model``.
    CREATE_KWARGS: ClassVar[Dict[str, object]] = {}

    @configurable
    def __init__(
        self,
        *,
        out_features: Optional[Sequence[str]] = None,
        remaps: Optional[Sequence[str]] = None,
        strides: Optional[Sequence[int]] = None,
        channels: Optional[Sequence[int]] = None,
        freeze_at: int = 0,
        pretrained: Union[bool, str, None] = False,
        remove_layers: Sequence[str] = (),
        in_chans: int = 3,
        fixed_input_size: Optional[bool] = None,
    ):
        """
        Args:
            out_features: levels to return, by feature name (``res4``) or timm module
                name (``layer3``); default :attr:`OUT_FEATURES`.
            remaps: output names for ``out_features``, one each; default their names.
            strides, channels: optional, one each: checked against the model.
            freeze_at: 0 trains everything, 1 freezes the stem, k freezes the stem and
                the first k-1 stages (with frozen batch norm that keeps fused activations).
            pretrained: False; True for timm's hub weights; or a path to a local timm
                checkpoint (.pth, .pt, .bin or .safetensors).
            remove_layers: timm module paths replaced by ``nn.Identity``.
            in_chans: input channels.
            fixed_input_size: pad every input (bottom and right) to :attr:`INPUT_SIZE`
                and crop the maps back to ``ceil(input / stride)``; default
                :attr:`FIXED_INPUT_SIZE`. Required for fixed-size models.
        """
        super().__init__()
        self._pad_to = resolve_fixed_input_size(type(self), fixed_input_size)
        selected = resolve_out_features(type(self), out_features, remaps, strides, channels)
        self._levels: Tuple[Tuple[str, Feature], ...] = selected
        self.body = create_timm_features(
            type(self),
            out_indices=tuple(feature.index for _, feature in selected),
            pretrained=resolve_pretrained(pretrained),
            in_chans=in_chans,
        )
        self._check_timm_matches(selected)
        self._remove_layers(remove_layers)
        self._freeze(freeze_at)
        self._out_features = [name for name, _ in selected]
        self._out_feature_channels = {name: f.channels for name, f in selected}
        self._out_feature_strides = {name: f.stride for name, f in selected}

    @classmethod
    def from_config(cls, cfg, input_shape=None):
        return backbone_kwargs_from_config(cls, cfg, input_shape)

    @property
    def size_divisibility(self) -> int:
        return math.lcm(*self._out_feature_strides.values())

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        if x.dim() != 4:
            raise ValueError(f"{self.TIMM_MODEL} expects NCHW input, got shape {tuple(x.shape)}")
        height, width = x.shape[-2:]
        padded_h, padded_w = self._padded_size(height, width)
        padded = (padded_h, padded_w) != (height, width)
        if padded:
            x = torch.nn.functional.pad(x, (0, padded_w - width, 0, padded_h - height))
        maps = self.body(x)
        if isinstance(maps, dict):
            maps = list(maps.values())
        if self.LAYOUT == "NHWC":
            maps = [m.permute(0, 3, 1, 2) for m in maps]
        if padded or self.SIZE_SLACK:  # exactly ceil(input / stride), as detectron2 expects
            maps = [
                _fit(m, math.ceil(height / f.stride), math.ceil(width / f.stride))
                for (_, f), m in zip(self._levels, maps)
            ]
        return {name: m for (name, _), m in zip(self._levels, maps)}

    def _padded_size(self, height: int, width: int) -> Tuple[int, int]:
        """The size the input is zero-padded to (bottom and right) before timm sees it:
        the fixed input size, or :attr:`INPUT_PAD` more, or the input's own."""
        if self._pad_to is not None:
            fixed_h, fixed_w = self._pad_to
            if height > fixed_h or width > fixed_w:
                raise ValueError(
                    f"{self.TIMM_MODEL} takes inputs up to {fixed_h}x{fixed_w} (INPUT.FIXED_INPUT_SIZE pads them "
                    f"to that size), got {height}x{width}: lower INPUT.MAX_SIZE_TRAIN and INPUT.MAX_SIZE_TEST"
                )
            return fixed_h, fixed_w
        return height + self.INPUT_PAD, width + self.INPUT_PAD

    # -- construction steps -------------------------------------------------------

    def _check_timm_matches(self, selected: Tuple[Tuple[str, Feature], ...]) -> None:
        """Fail loudly if the installed timm builds the model differently from the facts
        this module was generated with (the run-time half of the drift check)."""
        info = self.body.feature_info
        indices = [feature.index for _, feature in selected]
        declared = [(f.module, f.channels) for _, f in selected]
        actual = [(info.module_name(i), info.channels(i)) for i in indices]
        if declared != actual:
            raise RuntimeError(
                f"the installed timm builds {self.TIMM_MODEL} with feature (module, channels) {actual}, "
                f"but this generated module declares {declared}. timm changed: regenerate the package "
                "with `d2timm-gen generate` (and see `d2timm-gen check` for the full report)."
            )

    def _remove_layers(self, remove_layers: Sequence[str]) -> None:
        valid = sorted(name for name, _ in self.body.named_modules() if name)
        for path in remove_layers:
            if path not in valid:
                shown = ", ".join(valid[:40]) + (", ..." if len(valid) > 40 else "")
                raise ValueError(
                    f"MODEL.BACKBONE.CONFIG.REMOVE_LAYERS: {path!r} is not a module of {self.TIMM_MODEL}'s "
                    f"features_only model; valid: {shown}"
                )
            parent, _, leaf = path.rpartition(".")
            self.body.get_submodule(parent).add_module(leaf, torch.nn.Identity())

    def stage_paths(self) -> Tuple[str, ...]:
        """Paths of the stage-ending modules: the levels at stride >= 4. Empty when timm's
        features wrapper rebuilt the model so that some have no path (hrnet, mvitv2)."""
        paths = tuple(f.path for f in self.FEATURES if f.stride >= STAGE_MIN_STRIDE)
        return paths if all(paths) else ()

    def _freeze(self, freeze_at: int) -> None:
        stages = self.stage_paths()
        if not stages and freeze_at != 0:
            raise ValueError(
                f"MODEL.BACKBONE.FREEZE_AT: {freeze_at!r} is not valid for {self.TIMM_MODEL}; valid: 0 (its "
                "features_only model has no addressable stage modules to freeze stage by stage)"
            )
        if (
            isinstance(freeze_at, bool)
            or not isinstance(freeze_at, int)
            or not 0 <= freeze_at <= len(stages) + 1
        ):
            raise ValueError(
                f"MODEL.BACKBONE.FREEZE_AT: {freeze_at!r} is not valid for {self.TIMM_MODEL}; valid: 0 "
                f"(train everything), 1 (freeze the stem) ... {len(stages) + 1} (freeze the stem and all "
                f"{len(stages)} stages)"
            )
        if freeze_at == 0:
            return
        from timm.utils.model import freeze

        frozen = [path for path, part in stage_partition(self.body, stages) if part < freeze_at]
        params = dict(self.body.named_parameters())
        for path in frozen:
            if path in params:
                params[path].requires_grad_(False)
            else:
                freeze(self.body, [path])
