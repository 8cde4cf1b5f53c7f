"""Render: specs -> file texts, through the Jinja templates. Never imports torch or timm.

The environment is strict (undefined variables raise) and keeps trailing newlines. Values
reach the templates only through the ``py`` and ``yaml`` filters, which emit literals
for validated names and numbers, never raw text.
"""

from __future__ import annotations

import math
import re
import textwrap
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Sequence, Tuple

import jinja2

from .names import check_identifier, class_name
from .spec import ModelSpec
from .tasks import (
    DEEPLAB_OUTPUT_STRIDE,
    TASKS,
    VITDET_RECIPES,
    check_model_takes,
    checkpoint_in_recipe,
    retinanet_anchor_sizes,
    seed_path,
    task_levels,
    training_recipe,
)

__all__ = [
    "RUNTIME_MODULES",
    "BASE_CONFIGS",
    "render_model",
    "render_package",
    "render_seeds",
    "render_support",
    "EXPORT_COLUMNS",
    "EXPORT_STATUSES",
    "export_tallies",
    "failure_kind",
    "render_task_seed",
    "render_recipe_seed",
    "template_dir",
]

#: The training short sides of the base configs (detectron2's Mask R-CNN recipe).
BASE_MIN_SIZE_TRAIN = (640, 672, 704, 736, 768, 800)

RUNTIME_MODULES = (
    "__init__", "backbone", "config", "fpn", "optim", "padding", "pyramid", "registry", "resample", "training",
    "weights",
)
BASE_CONFIGS = {"fpn": "Base-RCNN-FPN-timm.yaml", "plain": "Base-RCNN-timm.yaml"}


@lru_cache(maxsize=None)
def template_dir() -> Path:
    """The templates beside this package in a checkout, else the installed package data
    (``generator.templates``)."""
    checkout = Path(__file__).resolve().parent.parent / "templates"
    if (checkout / "package" / "model.py.j2").is_file():
        return checkout
    from importlib.resources import files

    return Path(str(files("generator.templates")))


_PLAIN_STR = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "none"}


def py_literal(value) -> str:
    """A Python literal for a validated value (str, int, float, bool, tuples of them)."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, (int, str)):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"non-finite float {value!r} cannot be rendered")
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(py_literal(v) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(py_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    raise TypeError(f"cannot render {type(value).__name__} as a Python literal")


def yaml_literal(value) -> str:
    """A YAML flow literal; strings are quoted unless plainly safe."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return py_literal(value)
    if isinstance(value, float):
        text = py_literal(value)
        mantissa, e, exponent = text.partition("e")
        if e:  # YAML 1.1 (PyYAML, yacs) reads 1e-07 as a string: it wants 1.0e-07
            mantissa += "" if "." in mantissa else ".0"
            exponent = exponent if exponent[0] in "+-" else "+" + exponent
            text = f"{mantissa}e{exponent}"
        return text
    if isinstance(value, str):
        if _PLAIN_STR.match(value) and value.lower() not in _YAML_WORDS:
            return value
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(yaml_literal(v) for v in value) + "]"
    raise TypeError(f"cannot render {type(value).__name__} as YAML")


def wrap(text: str, width: int = 88, prefix: str = "") -> str:
    """``text`` filled to ``width`` columns, every line starting with ``prefix``."""
    return textwrap.fill(
        text,
        width=width,
        initial_indent=prefix,
        subsequent_indent=prefix,
        break_long_words=False,
        break_on_hyphens=False,
    )


@lru_cache(maxsize=None)
def environment(root: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(root),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["py"] = py_literal
    env.filters["yaml"] = yaml_literal
    env.filters["wrap"] = wrap
    env.filters["class_name"] = lambda spec: class_name(spec.name)
    env.filters["input_summary"] = input_summary
    return env


def _render(template: str, **context) -> str:
    return environment(str(template_dir())).get_template(template).render(**context)


def builder_names(model: str) -> Tuple[str, str]:
    check_identifier(model)
    return f"build_{model}_backbone", f"build_{model}_fpn_backbone"


def _size(side_h: int, side_w: int) -> str:
    return f"{side_h}x{side_w}"


def input_rule(spec: ModelSpec) -> str:
    """Which input sizes the model takes and why, in sentences: the module docstring,
    the YAML comment and SUPPORT.md all state it from here."""
    facts = spec.facts
    pretrained = _size(*facts.input_size[1:])
    divisibility = f"size_divisibility is {spec.size_divisibility}"
    if spec.fpn_size_divisibility != spec.size_divisibility:
        divisibility += f" ({spec.fpn_size_divisibility} for the FPN variant)"
    padded_once = f"Its {divisibility}: detectron2 pads each batch to that, so the backbone's own padding copies nothing."
    if spec.fpn_size_divisibility % spec.size_divisibility:
        padded_once = (
            f"Its {divisibility}: detectron2 pads each batch to that. The simple pyramid asks for multiples of "
            f"{spec.fpn_size_divisibility}, on which each of its levels is exactly twice the next (detectron2's "
            "semantic heads add them); its backbone then pads once more, to what the model needs."
        )
    if not facts.fixed_input_size:
        needs = ""
        if facts.input_multiple > max(f.stride for f in spec.features):
            needs = f" (timm's model needs multiples of {facts.input_multiple}: the probes at smaller multiples fail)"
        sentences = [
            f"Any input size. The backbone pads each input (bottom and right) to a multiple of "
            f"{spec.size_divisibility}{needs} and crops the maps to ceil(input / stride)."
        ]
        if facts.input_pad:
            sentences.append(
                f"Its {divisibility}: detectron2 pads each batch to that. Its unpadded convolutions shrink the maps, "
                f"so the backbone then pads every input by {facts.input_pad} more pixels and crops the maps."
            )
        else:
            sentences.append(padded_once)
        if facts.create_kwargs:
            arguments = ", ".join(f"{key}={value}" for key, value in facts.create_kwargs)
            sentences.append(f"timm builds it with {arguments}.")
        return " ".join(sentences)
    if facts.img_size:
        built = _size(facts.img_size, facts.img_size)
        sentences = [
            f"One input size: timm has no dynamic input size for it, but builds it at other sizes. Pretrained at "
            f"{pretrained}, it is built at {built} for detection (MODEL.BACKBONE.CONFIG.IMG_SIZE, any multiple of "
            f"{facts.img_size_multiple}), and every input up to that size is padded to it.",
            padded_once,
        ]
        if facts.grid_params:
            params = ", ".join(
                f"{g.pattern} ({g.kind}" + (f", {g.extra} off the grid)" if g.extra else ")") for g in facts.grid_params
            )
            sentences.append(
                f"A checkpoint saved at {pretrained} loads through PRETRAINED with these parameters resampled to "
                f"the model's size (GRID_PARAMS, runtime/resample.py): {params}."
            )
        else:
            sentences.append(f"No parameter depends on the size: a checkpoint saved at {pretrained} loads as it is.")
        return " ".join(sentences)
    return (
        f"Fixed at {pretrained}, its pretrained size: every input up to that size is padded to it. {padded_once} "
        f"It cannot be built at a detection size: {facts.fixed_reason}."
    )


def input_summary(spec: ModelSpec) -> str:
    """The input rule in a table cell of SUPPORT.md."""
    facts = spec.facts
    if not facts.fixed_input_size:
        kwargs = ", ".join(key for key, _ in facts.create_kwargs)
        extra = f" ({kwargs})" if kwargs else ""
        extra += f" (padded by {facts.input_pad}, cropped)" if facts.input_pad else ""
        return f"any, padded to a multiple of {spec.size_divisibility}{extra}"
    if facts.img_size:
        resampled = ", ".join(g.pattern for g in facts.grid_params) or "nothing"
        return (
            f"built at {facts.img_size}x{facts.img_size} (IMG_SIZE, multiple of {facts.img_size_multiple}; "
            f"pretrained {_size(*facts.input_size[1:])}, resampled at load: {resampled})"
        )
    return f"fixed at {_size(*facts.input_size[1:])}: {facts.fixed_reason}"


def render_model(spec: ModelSpec) -> str:
    builder, fpn_builder = builder_names(spec.name)
    return _render(
        "package/model.py.j2",
        spec=spec,
        class_name=class_name(spec.name),
        builder=builder,
        fpn_builder=fpn_builder,
        input_rule=input_rule(spec),
    )


def _scaled(values: Sequence[float]) -> Tuple[float, ...]:
    return tuple(round(v * 255.0, 4) for v in values)


#: The levels detectron2's Mask R-CNN configs read (FPN p2..p5 and the pooled p6).
DEFAULT_LEVELS = (2, 3, 4, 5, 6)
#: The LazyConfig seeds' training size for models that take any size: the recipe's.
LSJ_IMAGE_SIZE = 1024


def _fpn_heads(spec: ModelSpec) -> Dict[str, list]:
    """What the heads read: the FPN levels (the simple pyramid's p2..p5) and the pooled
    level on top, with anchors of 8 times their stride and ROI pooler scales."""
    if spec.pyramid == "simple":
        levels = [2, 3, 4, 5]
    else:
        levels = [spec.feature(name).stride.bit_length() - 1 for name in spec.fpn_in_features]
    levels.append(levels[-1] + 1)  # the max-pooled level on top
    return dict(
        rpn_features=[f"p{k}" for k in levels],
        roi_features=[f"p{k}" for k in levels[:-1]],
        anchor_sizes=[[8 * 2**k] for k in levels],
        anchor_strides=[2**k for k in levels],
        pooler_scales=tuple(1.0 / 2**k for k in levels[:-1]),
        default_rpn_features=[f"p{k}" for k in DEFAULT_LEVELS],
    )


def fpn_note(spec: ModelSpec) -> List[str]:
    """Which levels the FPN variant reads, and why (comment lines for the YAML seed)."""
    used = ", ".join(f"{name} (stride {spec.feature(name).stride})" for name in spec.fpn_in_features)
    left = [name for name in spec.out_features if name not in spec.fpn_in_features]
    if spec.pyramid == "fpn":
        lines = [f"detectron2's FPN reads {used}: strides that are powers of two, each twice the previous."]
        if left:
            lines.append(f"Left out: {', '.join(left)}, whose strides do not continue that chain.")
        return lines
    strides = sorted({f.stride for f in spec.features})
    why = "every level has the same stride" if len(strides) == 1 else "no two levels form a chain of powers of two"
    return [
        f"A simple feature pyramid (ViTDet style) reads {used}, since {why}:",
        "it resamples that map to p2..p5 (strides 4, 8, 16, 32) and max-pools p6 (64).",
    ]


def config_keys(spec: ModelSpec) -> List[str]:
    """How the YAML names the default outputs in ``OUT_FEATURES``: by timm module, as
    the earlier wrappers did, unless a module holds several levels (coat's
    ``parallel_blocks``, crossvit's two branches); then by feature name."""
    modules = [f.module for f in spec.features]
    return [
        spec.feature(name).module if modules.count(spec.feature(name).module) == 1 else name
        for name in spec.out_features
    ]


def train_sizes(spec: ModelSpec) -> List[int]:
    """MIN_SIZE_TRAIN when the base config's does not fit a fixed-size model (else [],
    the base's): its sides up to the model's, or the model's side alone."""
    limit = spec.test_size[0]
    if not spec.facts.fixed_input_size or max(BASE_MIN_SIZE_TRAIN) <= limit:
        return []
    return [side for side in BASE_MIN_SIZE_TRAIN if side <= limit] or [limit]


def render_seeds(spec: ModelSpec, package: str) -> Dict[str, str]:
    """The user-owned seeds of a model: the YAML configs ``<family>/<model>.yaml`` and
    ``_fpn.yaml``, and the LazyConfig ``<family>/<model>_mask_rcnn.py``, which imports
    its backbone from ``package``."""
    check_identifier(package, "package name")
    builder, fpn_builder = builder_names(spec.name)
    common = dict(
        spec=spec,
        out_features=[spec.feature(name) for name in spec.out_features],
        out_keys=config_keys(spec),
        pixel_mean=_scaled(spec.facts.pixel_mean),
        pixel_std=_scaled(spec.facts.pixel_std),
        head_feature=spec.out_features[-1],
        fpn_note=fpn_note(spec),
        input_rule=input_rule(spec),
        train_sizes=train_sizes(spec),
    )
    plain = _render(
        "configs/model.yaml.j2",
        fpn=False,
        builder=builder,
        base=BASE_CONFIGS["plain"],
        **common,
    )
    fpn = _render(
        "configs/model.yaml.j2",
        fpn=True,
        builder=fpn_builder,
        base=BASE_CONFIGS["fpn"],
        **common,
        **_fpn_heads(spec),
    )
    lazy = _render(
        "configs/mask_rcnn.py.j2",
        package=package,
        class_name=class_name(spec.name),
        image_size=spec.facts.build_size[0] if spec.facts.fixed_input_size else LSJ_IMAGE_SIZE,
        **common,
        **_fpn_heads(spec),
    )
    return {
        f"{spec.family}/{spec.name}.yaml": plain,
        f"{spec.family}/{spec.name}_fpn.yaml": fpn,
        f"{spec.family}/{spec.name}_mask_rcnn.py": lazy,
    }


def render_task_seed(spec: ModelSpec, task: str, fmt: str, package: str) -> Dict[str, str]:
    """The seed of ``spec`` for a detectron2 task (``generator/tasks.py``), by its path
    under the configs folder: a YAML config on top of the model's ``_fpn.yaml``, or a
    LazyConfig on the zoo's. Mask R-CNN's seeds are :func:`render_seeds`'."""
    check_identifier(package, "package name")
    if task == "mask_rcnn":
        path = seed_path(spec, task, fmt)
        return {path: render_seeds(spec, package)[path]}
    if TASKS[task].heads == "dilated":
        check_model_takes(spec.facts.output_strides, spec.name, task)
        coarsest = spec.out_features[-1]
        strides = [min(spec.feature(name).stride, DEEPLAB_OUTPUT_STRIDE) for name in spec.out_features]
        text = _render(
            "configs/deeplab.yaml.j2",
            spec=spec,
            task=TASKS[task],
            base=f"{spec.name}.yaml",
            output_stride=DEEPLAB_OUTPUT_STRIDE,
            strides=strides,
            head_feature=coarsest,
        )
        return {seed_path(spec, task, fmt): text}
    if task == "mask_rcnn_vitdet":
        return {seed_path(spec, task, fmt): render_recipe_seed(spec, package)}
    levels = task_levels(spec, task)
    roi_features = levels.head_features[: -levels.top_levels]
    coarsest = spec.feature(levels.fpn_in_features[-1])
    context = dict(
        spec=spec,
        task=TASKS[task],
        levels=levels,
        anchor_sizes=retinanet_anchor_sizes(levels),
        sem_seg_features=roi_features,
    )
    if fmt == "yaml":
        text = _render("configs/task.yaml.j2", base=f"{spec.name}_fpn.yaml", **context)
        return {seed_path(spec, task, fmt): text}
    top = "a max-pooled level" if TASKS[task].heads != "one_stage" else "P6 and P7, stride-2 convolutions"
    source = (
        "p5" if spec.pyramid == "simple" or task == "fcos" else f"{coarsest.name}, the coarsest backbone level"
    )
    text = _render(
        "configs/task.py.j2",
        package=package,
        class_name=class_name(spec.name),
        input_rule=input_rule(spec),
        fpn_note=_task_fpn_note(spec, levels),
        top_note=f"The levels above the coarsest: {top} on {source}, as detectron2's {TASKS[task].zoo_py}.",
        coarsest_level=f"p{_pyramid_top(spec, levels)}",
        coarsest_channels=coarsest.channels,
        roi_features=roi_features,
        pooler_scales=tuple(1.0 / 2**k for k in levels.head_levels[: -levels.top_levels]),
        rcnn_anchor_sizes=[[8 * 2**k] for k in levels.head_levels],
        default_head_features=[f"p{k}" for k in DEFAULT_LEVELS],
        pixel_mean=_scaled(spec.facts.pixel_mean),
        pixel_std=_scaled(spec.facts.pixel_std),
        train_short_sides=tuple(train_sizes(spec) or BASE_MIN_SIZE_TRAIN),
        **context,
    )
    return {seed_path(spec, task, fmt): text}


def render_recipe_seed(spec: ModelSpec, package: str) -> str:
    """ViTDet's training recipe on top of the model's Mask R-CNN seed, which it imports."""
    recipe = training_recipe(spec)
    if spec.facts.num_layers:
        depth_note = f"timm lays {spec.name} out in {spec.facts.num_layers} layers, the stem's and {spec.facts.num_layers - 1} more"
    else:
        depth_note = f"timm gives {spec.name} no layering, so ViT-B's"
    return _render(
        "configs/vitdet.py.j2",
        spec=spec,
        task=TASKS["mask_rcnn_vitdet"],
        package=package,
        class_name=class_name(spec.name),
        recipe=recipe,
        recipes="; ".join(f"{r.name}: {r.blocks} blocks, lr decay {r.lr_decay}, drop path {r.drop_path_rate}" for r in VITDET_RECIPES),
        depth_note=depth_note,
        checkpoint=checkpoint_in_recipe(spec),
    )


def _task_fpn_note(spec: ModelSpec, levels) -> List[str]:
    """:func:`fpn_note`, or which levels a one-stage detector's FPN reads instead."""
    if spec.pyramid == "simple" or tuple(levels.fpn_in_features) == tuple(spec.fpn_in_features):
        return fpn_note(spec)
    used = ", ".join(f"{name} (stride {spec.feature(name).stride})" for name in levels.fpn_in_features)
    return [f"detectron2's FPN reads {used}: from stride 8 up, as detectron2's one-stage detectors read res3..res5."]


def _pyramid_top(spec: ModelSpec, levels) -> int:
    """log2 stride of the coarsest pyramid level below the top block."""
    return levels.head_levels[-levels.top_levels - 1]


def render_base_configs() -> Dict[str, str]:
    return {name: _render(f"configs/{name}.j2", min_size_train=BASE_MIN_SIZE_TRAIN) for name in sorted(BASE_CONFIGS.values())}


def render_package(package: str, specs: Iterable[ModelSpec]) -> Dict[str, str]:
    """Every file of the generated package except the manifest, by path inside it."""
    check_identifier(package, "package name")
    specs = sorted(specs, key=lambda s: s.name)
    files = {"__init__.py": _render("package/__init__.py.j2", package=package, models=specs)}
    for module in RUNTIME_MODULES:
        files[f"runtime/{module}.py"] = _render(f"package/runtime/{module}.py.j2")
    families: Dict[str, list] = {}
    for spec in specs:
        families.setdefault(spec.family, []).append(spec)
        files[f"{spec.family}/{spec.name}.py"] = render_model(spec)
    for family, members in sorted(families.items()):
        files[f"{family}/__init__.py"] = _render("package/family.py.j2", family=family, models=members)
    return files


#: The real-compute sweep's export columns (tools/dev/sweep.py), in SUPPORT.md's order,
#: and what each says of a model (n/a: a dynamic export of a model built at one size).
EXPORT_COLUMNS = ("onnx", "onnx dynamic", "torch.export dynamic", "torchscript")
EXPORT_STATUSES = ("ok", "failed", "n/a")


#: A number in a failure's reason (a size, a shape's side in ``2x3x289x383``, a difference
#: such as ``6.7e-02``), not a digit of a name (``conv2d``, ``p2``, ``stages.3``).
_NUMBER = re.compile(r"(?<![A-Za-wyz_.])\d+(\.\d+)?(e[-+]?\d+)?(?![A-Za-wyz_])")


#: Where a reason turns from the failing construct to the model's own detail: a guard's
#: symbolic expression (torch.export), onnxruntime's status message.
_DETAIL = re.compile(r"\b(Guard failed|Status Message)\b.*$", re.DOTALL)


def failure_kind(reason: str) -> str:
    """A failure's reason with its numbers replaced by ``#`` and the model's own detail
    after a guard or a status message dropped: one cause, met by models of other sizes
    and shapes, reads as one group."""
    return _NUMBER.sub("#", _DETAIL.sub(r"\1", reason))


def export_tallies(verified: Mapping[str, Mapping]) -> Tuple[Dict[str, Tuple[int, int, int]], List[Tuple[str, Tuple[str, ...]]]]:
    """Per export column: (ok, exported, n/a) over the models with export results; and the
    failures grouped by :func:`failure_kind`, most frequent first, each with its
    ``model (column)`` cases."""
    tallies: Dict[str, Tuple[int, int, int]] = {}
    groups: Dict[str, List[str]] = {}
    for column in EXPORT_COLUMNS:
        cells = [(name, record["export"][column]) for name, record in sorted(verified.items()) if column in record.get("export", {})]
        if not cells:
            continue
        statuses = [cell["status"] for _, cell in cells]
        na = statuses.count("n/a")
        tallies[column] = (statuses.count("ok"), len(cells) - na, na)
        for name, cell in cells:
            if cell["status"] == "failed":
                groups.setdefault(failure_kind(cell["reason"]), []).append(f"{name} ({column})")
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    return tallies, [(kind, tuple(cases)) for kind, cases in ordered]


def render_support(
    specs: Iterable[ModelSpec], excluded: Mapping[str, Tuple[str, str]], verified: Mapping[str, Mapping] = None
) -> str:
    """``SUPPORT.md``: one row per architecture, generated or not, with the result of the
    real-compute sweep where one is recorded (``verified``)."""
    verified = verified or {}
    specs = sorted(specs, key=lambda s: s.name)
    counts: Dict[str, List[int]] = {}  # family: generated, not generated, verified, run
    for spec in specs:
        row = counts.setdefault(spec.family, [0, 0, 0, 0])
        status = verified.get(spec.name, {}).get("status")
        row[0] += 1
        row[2] += status == "verified"
        row[3] += status in ("verified", "failed")
    for family, _ in excluded.values():
        counts.setdefault(family, [0, 0, 0, 0])[1] += 1
    statuses = [record["status"] for record in verified.values()]
    fixed_sides = [0, 0, 0]  # verified fixed-size models: at their seeds' side, at another, side not recorded
    for spec in specs:
        record = verified.get(spec.name, {})
        if spec.facts.img_size and record.get("status") == "verified":
            side = record.get("img_size", 0)
            fixed_sides[0 if side == spec.facts.img_size else 1 if side else 2] += 1
    dilated: Dict[str, list] = {}  # family: takes 16, takes 8, names
    for spec in specs:
        if spec.facts.output_strides:
            row = dilated.setdefault(spec.family, [0, 0, []])
            row[0] += 16 in spec.facts.output_strides
            row[1] += 8 in spec.facts.output_strides
            row[2].append(f"`{spec.name}`")
    tallies, groups = export_tallies(verified)
    family_exports: Dict[str, Dict[str, List[int]]] = {}  # family: column: ok, exported
    export_cells: Dict[str, str] = {}  # model: its export cell
    for spec in specs:
        columns = verified.get(spec.name, {}).get("export", {})
        if not columns:
            continue
        row = family_exports.setdefault(spec.family, {column: [0, 0] for column in EXPORT_COLUMNS})
        for column, cell in columns.items():
            row[column][0] += cell["status"] == "ok"
            row[column][1] += cell["status"] != "n/a"
        failed = [column for column in EXPORT_COLUMNS if columns.get(column, {}).get("status") == "failed"]
        export_cells[spec.name] = f"fails: {', '.join(failed)}" if failed else "ok"
    return _render(
        "package/SUPPORT.md.j2",
        export_columns=EXPORT_COLUMNS,
        export_tallies=tallies,
        export_groups=groups,
        family_exports=sorted(family_exports.items()),
        export_cells=export_cells,
        dilated=sorted((family, tuple(row)) for family, row in dilated.items()),
        dilated_total={k: sum(k in s.facts.output_strides for s in specs) for k in (8, 16)},
        specs=specs,
        excluded=sorted(excluded.items()),
        families=sorted((family, tuple(pair)) for family, pair in counts.items()),
        verified=verified,
        tally={status: statuses.count(status) for status in ("verified", "failed", "not run")},
        fixed_sides=fixed_sides,
        timm_versions=sorted({record.get("timm", "") for record in verified.values()} - {""}),
    )
