"""The base class of every generated backbone.

A generated module subclasses :class:`TimmBackbone` and states every fact about its
model as class constants (feature levels, channels, strides, layout, input rules, pixel
statistics). This class turns those facts into a detectron2 ``Backbone``: it creates the
timm model with ``features_only`` (a fixed-size model at its detection size), checks that
timm still builds what the constants declare, freezes the stem and early stages on
request, takes any input size (``runtime/padding.py``) and converts the outputs to
detectron2's named NCHW maps of exactly ``ceil(input / stride)``.
"""

import math
from typing import ClassVar, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from detectron2.config import configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling import Backbone

from .config import (
    backbone_kwargs_from_config,
    resolve_fixed_input_size,
    resolve_img_size,
    resolve_out_features,
    resolve_output_stride,
    resolve_pretrained,
)
from .optim import layer_lr_factor_func
from .padding import fit_to_input, pad_to, padded_size, padding_constraints
from .resample import GridParam
from .training import check_drop_path, checkpoint_blocks, convert_norm, share_index_tables
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


class TimmBackbone(Backbone):
    """A timm model as a detectron2 backbone; subclasses state the model's facts.

    Built from a detectron2 config (``build_<model>_backbone``) or directly, as in a
    LazyConfig. A neck is configured from :meth:`feature_shapes`, which needs no
    instance; a single-level selection (``out_feature``) is what ViTDet-style configs
    interpolate (``in_feature="${.net.out_feature}"``)::

        backbone = L(ConvnextTinyBackbone)(out_features=["res3", "res4", "res5"])
        neck = L(ChannelMapper)(
            input_shapes=ConvnextTinyBackbone.feature_shapes(["res3", "res4", "res5"]),
            in_features=["res3", "res4", "res5"],
            ...
        )
        net = L(VitBasePatch16224Backbone)(out_feature="stage11")
    """

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
    #: What detectron2 pads a batch to for the default outputs (the ``size_divisibility``
    #: of the plain backbone, stated in the YAML); the backbone pads any other size itself.
    SIZE_DIVISIBILITY: ClassVar[int]
    #: Input sides must be multiples of this for timm's model (windows, patches); the
    #: backbone pads to it, and to every output stride.
    INPUT_MULTIPLE: ClassVar[int] = 1
    #: Pretrained input size (H, W), and whether the model only accepts one size (no
    #: dynamic size in timm): then every input is padded to it inside the backbone.
    INPUT_SIZE: ClassVar[Tuple[int, int]]
    FIXED_INPUT_SIZE: ClassVar[bool] = False
    #: A fixed-size model that timm builds at other sizes: the square side it is built at
    #: by default (a detection size), the multiple every side must be, and the parameters
    #: resampled when a checkpoint saved at INPUT_SIZE loads. 0 and () for the others.
    IMG_SIZE: ClassVar[int] = 0
    IMG_SIZE_MULTIPLE: ClassVar[int] = 0
    GRID_PARAMS: ClassVar[Tuple[GridParam, ...]] = ()
    #: Why a fixed-size model stays at INPUT_SIZE.
    FIXED_REASON: ClassVar[str] = ""
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
    #: The dilated output strides timm builds the model with (``output_stride``): every
    #: level then has stride ``min(stride, output_stride)``. Empty: it takes none.
    OUTPUT_STRIDES: ClassVar[Tuple[int, ...]] = ()
    #: timm's layering of the features_only model's parameters (``runtime/optim.py``): (the
    #: shortest module path whose parameters share a layer, layer), numbered 0 (stem) to
    #: NUM_LAYERS - 1; or () with LAYERS_REASON. Layer-wise lr decay scales by it.
    LAYERS: ClassVar[Tuple[Tuple[str, int], ...]] = ()
    NUM_LAYERS: ClassVar[int] = 0
    LAYERS_REASON: ClassVar[str] = ""
    #: The parameters timm exempts from weight decay, numbered parts as ``*``.
    NO_WEIGHT_DECAY: ClassVar[Tuple[str, ...]] = ()
    #: Whether timm builds stochastic depth for ``drop_path_rate`` (DROP_PATH_RATE).
    DROP_PATH: ClassVar[bool] = False

    @configurable
    def __init__(
        self,
        *,
        out_features: Optional[Sequence[str]] = None,
        out_feature: Optional[str] = None,
        remaps: Optional[Sequence[str]] = None,
        strides: Optional[Sequence[int]] = None,
        channels: Optional[Sequence[int]] = None,
        freeze_at: int = 0,
        pretrained: Union[bool, str, None] = False,
        img_size: int = 0,
        remove_layers: Sequence[str] = (),
        in_chans: int = 3,
        fixed_input_size: Optional[bool] = None,
        output_stride: int = 0,
        activation_checkpoint: bool = False,
        drop_path_rate: float = 0.0,
        norm: str = "",
    ):
        """
        Args:
            out_features: levels to return, by feature name (``res4``) or timm module
                name (``layer3``); default :attr:`OUT_FEATURES`.
            out_feature: one level to return, instead of ``out_features`` (ViTDet's name).
            remaps: output names for ``out_features``, one each; default their names.
            strides, channels: optional, one each: checked against the model.
            freeze_at: 0 trains everything, 1 freezes the stem, k freezes the stem and
                the first k-1 stages (with frozen batch norm that keeps fused activations).
            pretrained: False; True for timm's hub weights; or a path to a local timm
                checkpoint (.pth, .pt, .bin or .safetensors), saved at the model's
                pretrained size or at ``img_size``.
            img_size: the square side a fixed-size model is built at; default
                :attr:`IMG_SIZE` (0 for models that take any size).
            remove_layers: timm module paths replaced by ``nn.Identity``.
            in_chans: input channels.
            fixed_input_size: pad every input (bottom and right) to the size the model is
                built at and crop the maps back to ``ceil(input / stride)``; default
                :attr:`FIXED_INPUT_SIZE`. Required for fixed-size models.
            output_stride: 0 (the model's own strides) or one of :attr:`OUTPUT_STRIDES`
                (16, 8): timm dilates the coarse stages, whose strides become
                ``output_stride`` (DeepLab's backbones).
            activation_checkpoint: recompute each block's activations in the backward
                pass instead of keeping them (``runtime/training.py``).
            drop_path_rate: timm's stochastic depth, for models that have it.
            norm: the batch norms trained with: "" (as timm builds them), "BN",
                "FrozenBN" or "SyncBN", fused activations kept.
        """
        super().__init__()
        if out_feature is not None:
            if out_features:
                raise ValueError(
                    f"give out_features or out_feature, not both (got {out_features} and {out_feature!r})"
                )
            out_features = [out_feature]
        self.img_size = resolve_img_size(type(self), img_size)
        self._pad_to = resolve_fixed_input_size(type(self), fixed_input_size, self.img_size)
        self.output_stride = resolve_output_stride(type(self), output_stride)
        selected = resolve_out_features(
            type(self), out_features, remaps, strides, channels, self.output_stride
        )
        self._levels: Tuple[Tuple[str, Feature], ...] = selected
        self.body = create_timm_features(
            type(self),
            out_indices=tuple(feature.index for _, feature in selected),
            pretrained=resolve_pretrained(pretrained),
            in_chans=in_chans,
            img_size=self.img_size,
            output_stride=self.output_stride,
            drop_path_rate=float(drop_path_rate or 0.0),
        )
        self._check_timm_matches(selected)
        share_index_tables(self.body)
        check_drop_path(self.body, float(drop_path_rate or 0.0), self.TIMM_MODEL)
        self._remove_layers(remove_layers)
        self.body = convert_norm(self.body, norm or "", self.TIMM_MODEL)
        self._freeze(freeze_at)
        if not isinstance(activation_checkpoint, bool):
            raise ValueError(
                f"MODEL.BACKBONE.CONFIG.ACTIVATION_CHECKPOINT: {activation_checkpoint!r} is not valid; valid: true, false"
            )
        self.checkpointed_blocks = checkpoint_blocks(self.body) if activation_checkpoint else 0
        self._out_features = [name for name, _ in selected]
        self._out_feature_channels = {name: f.channels for name, f in selected}
        self._out_feature_strides = {name: f.stride for name, f in selected}

    @classmethod
    def from_config(cls, cfg, input_shape=None):
        return backbone_kwargs_from_config(cls, cfg, input_shape)

    def _apply(self, fn, *args, **kwargs):
        """Moves and casts (``.to``, ``.cuda``) copy each buffer on its own: share the equal
        index tables again (``runtime/training.py``)."""
        super()._apply(fn, *args, **kwargs)
        share_index_tables(self.body)
        return self

    @classmethod
    def feature_shapes(
        cls,
        out_features: Optional[Sequence[str]] = None,
        remaps: Optional[Sequence[str]] = None,
        output_stride: int = 0,
    ) -> Dict[str, ShapeSpec]:
        """What ``output_shape()`` of a backbone built with these ``out_features``,
        ``remaps`` and ``output_stride`` returns, in the same order (finest first),
        without building it."""
        selected = resolve_out_features(
            cls, out_features, remaps, None, None, resolve_output_stride(cls, output_stride)
        )
        return {name: ShapeSpec(channels=f.channels, stride=f.stride) for name, f in selected}

    @classmethod
    def lr_factor_func(cls, decay: float):
        """ViTDet's ``optimizer.params.lr_factor_func`` for this backbone: a parameter's lr
        scaled by ``decay ** (NUM_LAYERS - layer)``, 1 outside the backbone. On a ViT of
        depth d, the factors of ``get_vit_lr_decay_rate(num_layers=d, lr_decay_rate=decay)``."""
        return layer_lr_factor_func(cls, decay)

    @property
    def size_divisibility(self) -> int:
        """What the model needs: the square it is built at (a fixed-size model), or
        multiples of its input multiple and of every output stride."""
        if self._pad_to is not None and self._pad_to[0] == self._pad_to[1]:
            return self._pad_to[0]
        return math.lcm(self.INPUT_MULTIPLE, *self._out_feature_strides.values())

    @property
    def padding_constraints(self) -> Dict[str, int]:
        return padding_constraints(self.size_divisibility)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Any NCHW input: padded (bottom and right) to what the model needs, maps fitted
        to exactly ``ceil(input / stride)``."""
        if x.dim() != 4:
            raise ValueError(f"{self.TIMM_MODEL} expects NCHW input, got shape {tuple(x.shape)}")
        height, width = x.shape[-2:]
        maps = self.body(pad_to(x, *self._padded_size(height, width)))
        if isinstance(maps, dict):
            maps = list(maps.values())
        if self.LAYOUT == "NHWC":
            maps = [m.permute(0, 3, 1, 2) for m in maps]
        named = {name: m for (name, _), m in zip(self._levels, maps)}
        return fit_to_input(named, self._out_feature_strides, height, width)

    def _padded_size(self, height: int, width: int) -> Tuple[int, int]:
        """The size the input is zero-padded to before timm sees it: the size a fixed-size
        model is built at; else the next multiple of :attr:`size_divisibility`, plus
        :attr:`INPUT_PAD` for models whose unpadded convolutions shrink the maps."""
        if self._pad_to is not None:
            fixed_h, fixed_w = self._pad_to
            if height > fixed_h or width > fixed_w:
                raise ValueError(
                    f"{self.TIMM_MODEL} built at {fixed_h}x{fixed_w} takes inputs up to that size (it pads them to "
                    f"it), got {height}x{width}: lower INPUT.MAX_SIZE_TRAIN and INPUT.MAX_SIZE_TEST, or raise "
                    "MODEL.BACKBONE.CONFIG.IMG_SIZE"
                    + (
                        ""
                        if self.IMG_SIZE_MULTIPLE
                        else f" (not possible for it: {self.FIXED_REASON})"
                    )
                )
            return fixed_h, fixed_w
        return padded_size(height, width, self.size_divisibility, self.INPUT_PAD)

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
