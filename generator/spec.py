"""The spec: every fact about one model, frozen, with a canonical serialisation.

:class:`ModelFacts` is what introspection measured (feature modules, channels, strides,
layout, input rules, pixel statistics). :class:`ModelSpec` adds the decisions the
generator takes from those facts (feature names, default outputs, FPN levels, size
divisibility) through :func:`make_spec`, a pure function: golden tests feed it
hand-written facts, and a policy change here never needs a re-introspection.

Nothing here imports torch or timm.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

from .names import check_family, check_identifier, check_module_path, check_param_pattern, check_text

__all__ = [
    "FACTS_SCHEMA",
    "FeatureFacts",
    "FeatureSpec",
    "GridParam",
    "ModelFacts",
    "ModelSpec",
    "SpecError",
    "canonical_json",
    "make_spec",
    "sha256",
]

#: Bumped whenever introspection records something new or measures differently: cached
#: facts from an older schema are re-introspected.
FACTS_SCHEMA = 7

LAYOUTS = ("NCHW", "NHWC")

#: How a parameter sized by the input grid is laid out (runtime/resample.py resamples
#: each kind): "tokens", a flattened grid along one dim after ``extra`` entries (class
#: tokens: absolute position embeddings); "table", a flattened grid along one dim before
#: ``extra`` entries (relative-position and attention-bias tables, BEiT's three
#: cls distances last); "grid", a grid on two adjacent dims; "line", 1-D relative offsets
#: along one dim (botnet's height_rel, mvitv2's rel_pos_h).
GRID_KINDS = ("tokens", "table", "grid", "line")

#: detectron2's default test resize (ResizeShortestEdge 800, long side at most 1333): what
#: the YAML of a model that takes any input size keeps.
DETECTRON2_TEST_SIZE = (800, 1333)

#: The coarsest stride the simple feature pyramid makes by resampling (p5; p6 is pooled).
SIMPLE_PYRAMID_TOP = 32

#: Raw features finer than this stride are declared (users can opt in) but are not
#: default outputs: detectron2's own backbones start at res2 (stride 4).
MIN_DEFAULT_STRIDE = 4


class SpecError(ValueError):
    """Facts that cannot describe a usable backbone."""


def canonical_json(value: Any) -> str:
    """The one serialisation used for hashing and for the manifest."""
    return json.dumps(value, sort_keys=True, indent=1, ensure_ascii=True, allow_nan=False) + "\n"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class FeatureFacts:
    """One feature level as timm declares it and the probe forward measured it."""

    index: int  # position in timm's feature_info: the ``out_indices`` entry
    module: str  # timm's module name for the level (``layer1``, ``stages.0``)
    path: str  # where that module sits inside the features_only model ("": nowhere)
    channels: int
    reduction: int  # timm's nominal reduction
    stride: int  # measured by the probe forward

    def __post_init__(self) -> None:
        check_module_path(self.module)
        if self.path:
            check_module_path(self.path)
        for field in ("index", "channels", "reduction", "stride"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise SpecError(f"feature {self.module!r}: {field} must be an int >= 0, got {value!r}")
        if self.channels < 1 or self.stride < 1:
            raise SpecError(f"feature {self.module!r}: channels and stride must be positive")


@dataclass(frozen=True)
class GridParam:
    """A parameter whose shape depends on the input size timm builds the model at, and how
    a checkpoint's value is resampled to another size (see :data:`GRID_KINDS`)."""

    pattern: str  # state-dict key, numbered parts as ``*``: ``blocks.*.attn.attention_biases``
    kind: str
    dims: Tuple[int, ...]  # the dims holding the grid (two for "grid", else one)
    extra: int = 0  # entries off the grid along that dim (before it for "tokens", after for "table")

    def __post_init__(self) -> None:
        check_param_pattern(self.pattern)
        if self.kind not in GRID_KINDS:
            raise SpecError(f"grid parameter {self.pattern}: kind {self.kind!r} is not one of {GRID_KINDS}")
        wanted = 2 if self.kind == "grid" else 1
        if len(self.dims) != wanted or any(not isinstance(d, int) or d < 0 for d in self.dims):
            raise SpecError(f"grid parameter {self.pattern}: {self.kind} needs {wanted} dims >= 0, got {self.dims}")
        if self.kind == "grid" and self.dims[1] != self.dims[0] + 1:
            raise SpecError(f"grid parameter {self.pattern}: the two grid dims must be adjacent, got {self.dims}")
        if not isinstance(self.extra, int) or self.extra < 0 or (self.extra and self.kind not in ("tokens", "table")):
            raise SpecError(f"grid parameter {self.pattern}: extra must be 0, or >= 0 for tokens and tables")


@dataclass(frozen=True)
class ModelFacts:
    """Everything introspection learned about one timm architecture."""

    name: str
    family: str
    timm_version: str
    feature_class: str  # timm's features_only wrapper: FeatureListNet, FeatureGetterNet, ...
    layout: str  # NCHW or NHWC, as the features_only model returns its maps
    features: Tuple[FeatureFacts, ...]
    input_size: Tuple[int, int, int]  # pretrained_cfg["input_size"]: (C, H, W)
    fixed_input_size: bool
    pixel_mean: Tuple[float, float, float]  # 0..1 scale, RGB
    pixel_std: Tuple[float, float, float]
    probe_size: Tuple[int, int]  # (H, W) of the probe forward that measured the strides
    #: timm.create_model arguments that make the model take non-square, detector-sized
    #: inputs (``dynamic_img_size``, ``dynamic_img_pad``); empty for most CNNs.
    create_kwargs: Tuple[Tuple[str, bool], ...] = ()
    #: Input height and width must be multiples of this (1: the model pads itself).
    input_multiple: int = 1
    #: 0: every map is exactly ceil(input / stride); 1: timm's own padding makes some
    #: maps one row or column smaller or larger.
    size_slack: int = 0
    #: Pixels added at the bottom and right of every input, the maps then cropped to
    #: ceil(input / stride): for models whose unpadded convolutions shrink the maps
    #: (inception); 0 for most.
    input_pad: int = 0
    #: timm feature modules left out because they have no fixed stride (a branch that
    #: resamples its input inside the model, as crossvit's second branch does).
    omitted: Tuple[str, ...] = ()
    #: For a fixed-size model that timm can build at another size (``img_size=``): the
    #: square side it is built at for detection (0: built at ``input_size``), the
    #: multiple every such side must be, and the parameters whose shapes follow the size
    #: (resampled when a checkpoint saved at ``input_size`` is loaded).
    img_size: int = 0
    img_size_multiple: int = 0
    grid_params: Tuple[GridParam, ...] = ()
    #: Why a fixed-size model stays at ``input_size`` (empty for the others).
    fixed_reason: str = ""
    #: Parameters of the features_only model as introspection built it (0: not counted).
    params: int = 0
    #: False for a model whose forward reads tensor values (gemma4_vit's ``.item()``), which
    #: the meta device does not have: it was measured on real CPU tensors.
    meta_forward: bool = True
    #: The dilated output strides (16, 8) timm builds the model with (``output_stride=``),
    #: each verified by a probe: the same levels, every stride capped at it. Empty for
    #: models that take none.
    output_strides: Tuple[int, ...] = ()
    #: timm's layering of the features_only model's parameters, what layer-wise learning-rate
    #: decay scales by (``group_matcher(coarse=False)``, numbered 0.. over the backbone's own
    #: parameters): (the shortest module path whose parameters share a layer, layer), in
    #: parameter order. Empty, with ``layers_reason``, where timm gives none.
    layers: Tuple[Tuple[str, int], ...] = ()
    layers_reason: str = ""
    #: The parameters timm exempts from weight decay (``no_weight_decay()``: position
    #: embeddings, class tokens, relative-position tables), as features_only names with
    #: numbered parts as ``*``.
    no_weight_decay: Tuple[str, ...] = ()
    #: Whether timm builds stochastic depth for ``drop_path_rate`` (a ``DropPath`` layer).
    drop_path: bool = False

    def __post_init__(self) -> None:
        check_identifier(self.name)
        check_family(self.family)
        check_identifier(self.feature_class.lower(), "feature class")
        if self.layout not in LAYOUTS:
            raise SpecError(f"{self.name}: layout {self.layout!r} is not one of {LAYOUTS}")
        if not self.features:
            raise SpecError(f"{self.name}: no feature levels")
        if len(self.input_size) != 3 or len(self.pixel_mean) != 3 or len(self.pixel_std) != 3:
            raise SpecError(f"{self.name}: input_size, pixel_mean and pixel_std need 3 values")
        if any(not math.isfinite(v) for v in self.pixel_mean + self.pixel_std) or min(self.pixel_std) <= 0:
            raise SpecError(f"{self.name}: pixel statistics must be finite, std positive")
        for key, value in self.create_kwargs:
            check_identifier(key, "create_model argument")
            if not isinstance(value, bool):
                raise SpecError(f"{self.name}: create_model argument {key} must be a bool, got {value!r}")
        if self.size_slack not in (0, 1):
            raise SpecError(f"{self.name}: size_slack must be 0 or 1, got {self.size_slack!r}")
        if not isinstance(self.input_pad, int) or self.input_pad < 0:
            raise SpecError(f"{self.name}: input_pad must be an int >= 0, got {self.input_pad!r}")
        for module in self.omitted:
            check_module_path(module)
        if not isinstance(self.input_multiple, int) or self.input_multiple < 1:
            raise SpecError(f"{self.name}: input_multiple must be a positive int, got {self.input_multiple!r}")
        check_text(self.fixed_reason, "fixed-size reason")
        if self.img_size:
            if not self.fixed_input_size or self.fixed_reason:
                raise SpecError(f"{self.name}: img_size is for fixed-size models that can move, without a fixed_reason")
            if self.img_size_multiple < 1 or self.img_size % self.img_size_multiple:
                raise SpecError(f"{self.name}: img_size {self.img_size} is not a multiple of {self.img_size_multiple}")
        elif self.img_size_multiple or self.grid_params:
            raise SpecError(f"{self.name}: img_size_multiple and grid_params need an img_size")
        if not isinstance(self.params, int) or isinstance(self.params, bool) or self.params < 0:
            raise SpecError(f"{self.name}: params must be an int >= 0, got {self.params!r}")
        if not isinstance(self.meta_forward, bool):
            raise SpecError(f"{self.name}: meta_forward must be a bool, got {self.meta_forward!r}")
        if self.fixed_reason and not self.fixed_input_size:
            raise SpecError(f"{self.name}: a fixed_reason is for fixed-size models only")
        if tuple(sorted(set(self.output_strides))) != tuple(self.output_strides) or not set(self.output_strides) <= {8, 16}:
            raise SpecError(f"{self.name}: output_strides must be sorted values of 8 and 16, got {self.output_strides!r}")
        for path, layer in self.layers:
            check_module_path(path)
            if not isinstance(layer, int) or isinstance(layer, bool) or layer < 0:
                raise SpecError(f"{self.name}: layer of {path} must be an int >= 0, got {layer!r}")
        if self.layers and {layer for _, layer in self.layers} != set(range(self.num_layers)):
            raise SpecError(f"{self.name}: layers must be numbered 0 to {self.num_layers - 1} without gaps")
        check_text(self.layers_reason, "layers reason")
        if self.layers and self.layers_reason:
            raise SpecError(f"{self.name}: give layers or the reason there are none, not both")
        for pattern in self.no_weight_decay:
            check_param_pattern(pattern)
        if not isinstance(self.drop_path, bool):
            raise SpecError(f"{self.name}: drop_path must be a bool, got {self.drop_path!r}")

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelFacts":
        fields = {f.name for f in dataclasses.fields(cls)}
        # Fields with a default may be absent: their default is what introspection
        # recorded before they existed.
        defaults = {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}
        unknown = sorted(set(data) - fields)
        missing = sorted(fields - set(data) - set(defaults))
        if unknown or missing:
            raise SpecError(f"facts for {data.get('name')!r}: unknown keys {unknown}, missing keys {missing}")
        return cls(
            name=data["name"],
            family=data["family"],
            timm_version=data["timm_version"],
            feature_class=data["feature_class"],
            layout=data["layout"],
            features=tuple(FeatureFacts(**f) for f in data["features"]),
            input_size=tuple(int(v) for v in data["input_size"]),
            fixed_input_size=bool(data["fixed_input_size"]),
            pixel_mean=tuple(float(v) for v in data["pixel_mean"]),
            pixel_std=tuple(float(v) for v in data["pixel_std"]),
            probe_size=tuple(int(v) for v in data["probe_size"]),
            create_kwargs=tuple((str(k), bool(v)) for k, v in data.get("create_kwargs", defaults["create_kwargs"])),
            input_multiple=int(data.get("input_multiple", defaults["input_multiple"])),
            size_slack=int(data.get("size_slack", defaults["size_slack"])),
            input_pad=int(data.get("input_pad", defaults["input_pad"])),
            omitted=tuple(str(m) for m in data.get("omitted", defaults["omitted"])),
            img_size=int(data.get("img_size", defaults["img_size"])),
            img_size_multiple=int(data.get("img_size_multiple", defaults["img_size_multiple"])),
            grid_params=tuple(
                GridParam(pattern=g["pattern"], kind=g["kind"], dims=tuple(int(d) for d in g["dims"]), extra=int(g["extra"]))
                for g in data.get("grid_params", defaults["grid_params"])
            ),
            fixed_reason=str(data.get("fixed_reason", defaults["fixed_reason"])),
            params=int(data.get("params", defaults["params"])),
            meta_forward=bool(data.get("meta_forward", defaults["meta_forward"])),
            output_strides=tuple(int(v) for v in data.get("output_strides", defaults["output_strides"])),
            layers=tuple((str(p), int(i)) for p, i in data.get("layers", defaults["layers"])),
            layers_reason=str(data.get("layers_reason", defaults["layers_reason"])),
            no_weight_decay=tuple(str(p) for p in data.get("no_weight_decay", defaults["no_weight_decay"])),
            drop_path=bool(data.get("drop_path", defaults["drop_path"])),
        )

    @property
    def num_layers(self) -> int:
        """Layers of :attr:`layers` (0: none)."""
        return 1 + max(layer for _, layer in self.layers) if self.layers else 0

    @property
    def build_size(self) -> Tuple[int, int]:
        """The (H, W) timm builds the model at: ``img_size`` squared, else ``input_size``."""
        return (self.img_size, self.img_size) if self.img_size else tuple(self.input_size[1:])


@dataclass(frozen=True)
class FeatureSpec:
    """A feature level as the generated backbone exposes it."""

    name: str  # output name: ``res<log2 stride>`` or ``stage<index>``
    module: str
    path: str
    index: int
    channels: int
    stride: int


@dataclass(frozen=True)
class ModelSpec:
    """Facts plus the generator's decisions: what the templates render."""

    facts: ModelFacts
    features: Tuple[FeatureSpec, ...]
    out_features: Tuple[str, ...]  # default outputs of the plain backbone
    fpn_in_features: Tuple[str, ...]  # the levels the FPN variant reads
    pyramid: str  # "fpn" (detectron2's FPN) or "simple" (ViTDet-style, from one level)
    #: What detectron2 pads a batch to for the plain backbone and for its FPN variant: what
    #: the model needs, so that the backbone's own padding (any input size works) copies
    #: nothing once detectron2 has padded.
    size_divisibility: int
    fpn_size_divisibility: int
    #: The YAML's test resize (ResizeShortestEdge): shortest side, longest side at most.
    test_size: Tuple[int, int]
    naming: str  # how features are named, for the YAML comment

    @property
    def name(self) -> str:
        return self.facts.name

    @property
    def family(self) -> str:
        return self.facts.family

    def feature(self, name: str) -> FeatureSpec:
        for feature in self.features:
            if feature.name == name:
                return feature
        raise KeyError(name)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def canonical(self) -> str:
        return canonical_json(self.to_dict())

    def digest(self) -> str:
        return sha256(self.canonical())


def _is_power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


def _feature_names(features: Tuple[FeatureFacts, ...]) -> Tuple[Tuple[str, ...], str]:
    strides = [f.stride for f in features]
    if all(_is_power_of_two(s) for s in strides) and len(set(strides)) == len(strides):
        names = tuple(f"res{s.bit_length() - 1}" for s in strides)
        return names, "res<k> is the level at stride 2**k, as in detectron2's ResNet"
    names = tuple(f"stage{f.index}" for f in features)
    return names, "stage<i> is timm's feature level i (strides are not distinct powers of two)"


def _fpn_levels(names: Tuple[str, ...], strides: Tuple[int, ...]) -> Tuple[str, ...]:
    """The longest chain ending at the coarsest level whose strides are powers of two,
    each twice the previous: what detectron2's FPN accepts."""
    chain = []
    for name, stride in reversed(list(zip(names, strides))):
        if not _is_power_of_two(stride):
            if chain:
                break
            continue
        if chain and stride * 2 != chain[-1][1]:
            break
        chain.append((name, stride))
    return tuple(name for name, _ in reversed(chain))


def _size_divisibility(facts: ModelFacts, strides: Tuple[int, ...]) -> int:
    """A fixed-size model takes exactly its build size: a square side pads every input that
    fits to that square. Other models need multiples of their input multiple (windows,
    patches) and of every output stride (then each map is exactly input / stride)."""
    height, width = facts.build_size
    if facts.fixed_input_size and height == width:
        return height
    return math.lcm(facts.input_multiple, *strides)


def _fpn_size_divisibility(divisibility: int, pyramid: str, fpn_strides: Tuple[int, ...]) -> int:
    """detectron2's FPN pads to its coarsest input stride. The simple pyramid reaches
    stride 32 by pooling a power-of-two stride (exact on multiples of 32 and of what the
    backbone needs). A stride that is not a power of two (patch 14, stride 7) is resampled
    to each level: on multiples of 32 every level is then exactly twice the next, as
    detectron2's semantic heads need when they add them, and the backbone pads the rest of
    what it needs inside."""
    top = max(fpn_strides)
    if pyramid == "simple":
        return math.lcm(divisibility, SIMPLE_PYRAMID_TOP) if _is_power_of_two(top) else SIMPLE_PYRAMID_TOP
    return math.lcm(divisibility, top)


def _test_size(facts: ModelFacts, divisibility: int) -> Tuple[int, int]:
    """detectron2's 800/1333 for models that take any size; a fixed-size model's side
    (the largest that fits once detectron2 pads the batch to the FPN variant's
    ``divisibility``), square-padded as in ViTDet."""
    if not facts.fixed_input_size:
        return DETECTRON2_TEST_SIZE
    side = min(facts.build_size) // divisibility * divisibility
    return side, side


def make_spec(facts: ModelFacts, out_features: Optional[Tuple[str, ...]] = None) -> ModelSpec:
    """Derive the generated backbone's layout from measured facts (pure)."""
    ordered = tuple(sorted(facts.features, key=lambda f: f.index))
    if [f.stride for f in ordered] != sorted(f.stride for f in ordered):
        raise SpecError(f"{facts.name}: feature strides decrease: {[f.stride for f in ordered]}")
    names, naming = _feature_names(ordered)
    features = tuple(
        FeatureSpec(name=n, module=f.module, path=f.path, index=f.index, channels=f.channels, stride=f.stride)
        for n, f in zip(names, ordered)
    )
    by_name = {f.name: f for f in features}
    single_scale = len({f.stride for f in features}) == 1
    if out_features is None:
        coarse = tuple(f.name for f in features if f.stride >= MIN_DEFAULT_STRIDE)
        out_features = (features[-1].name,) if single_scale or not coarse else coarse
    else:
        unknown = [name for name in out_features if name not in by_name]
        if unknown:
            raise SpecError(f"{facts.name}: out_features {unknown} are not feature levels; valid: {list(by_name)}")
        wanted = set(out_features)
        out_features = tuple(f.name for f in features if f.name in wanted)  # finest first
    strides = tuple(by_name[name].stride for name in out_features)
    fpn = _fpn_levels(tuple(out_features), strides)
    pyramid = "fpn" if len(fpn) >= 2 else "simple"
    if pyramid == "simple":
        fpn = (out_features[-1],)
    divisibility = _size_divisibility(facts, strides)
    fpn_divisibility = _fpn_size_divisibility(divisibility, pyramid, tuple(by_name[n].stride for n in fpn))
    return ModelSpec(
        facts=facts,
        features=features,
        out_features=tuple(out_features),
        fpn_in_features=fpn,
        pyramid=pyramid,
        size_divisibility=divisibility,
        fpn_size_divisibility=fpn_divisibility,
        test_size=_test_size(facts, fpn_divisibility),
        naming=naming,
    )
