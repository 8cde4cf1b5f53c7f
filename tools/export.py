"""Export a generated backbone and its neck (FPN or simple pyramid), or the whole detector, to ONNX, TorchScript or a torch.export program, then check it against the eager model.

The config is a YAML or a LazyConfig seed, as tools/train_net.py reads it; the backbone is
the one its model names (``MODEL.BACKBONE.NAME`` / ``model.backbone``), with ``--weights``
(a detectron2 checkpoint, as train_net writes) or the config's own. The exported module
takes ``image``: N x 3 x H x W float, already normalised with the config's pixel
statistics, and returns one map per level, named by the level (p2 ... p6, or the plain
variant's names), in ``output_shape()`` order.

After writing FILE it loads it back (onnxruntime, torch.jit.load, torch.export.load) and
compares it with the eager model on the export size and, for a dynamic export of a model
that takes any size, on a second size that is not a multiple of 32; it prints the largest
absolute and relative difference per output. A static export is specialised to its size:
the second size is reported, not claimed. Fixed-size models export at their built size.

``--what model`` exports the whole detector the config builds, as detectron2's
``tools/deploy/export_model.py`` does: detectron2's ``TracingAdapter`` around the model's
inference (R-CNN: ``inference(do_postprocess=False)``, so masks are the ROI masks), traced
with ``torch.jit.trace`` (``torchscript``) or exported to ONNX. Its input is ``image``, one
3 x H x W float image in the config's ``INPUT.FORMAT``, unnormalised (the graph holds the
model's own normalisation and padding), already resized by the config's test transform;
its outputs are the flattened ``Instances`` fields (``pred_boxes``, ``scores``,
``pred_classes``, ...). The check runs the file and the eager model on ``--image`` (default:
the first image of the shapes dataset) resized by the config's test transform, and
requires the same number of detections, equal classes and boxes, scores and masks within
--rtol, each eager detection paired with the file's that matches it whatever their order
(near-tied scores may rank differently). Use ``MODEL.ROI_HEADS.SCORE_THRESH_TEST 0.0`` (or
the LazyConfig key) to compare many boxes of an untrained model.

Exit codes: 0 exported and equal within --rtol; 1 the export failed (the message names
the operator or construct) or the reloaded file differs from eager; 2 bad arguments.

Examples:
  .venv/bin/python tools/export.py --config-file configs/resnet/resnet18_fpn.yaml \\
      --format onnx --output resnet18_fpn.onnx --dynamic
  .venv/bin/python tools/export.py --config-file configs/convnext/convnext_tiny_mask_rcnn.py \\
      --format exported-program --output convnext_tiny.pt2
  .venv/bin/python tools/export.py --config-file configs/resnet/resnet18_fpn.yaml --what model \\
      --format onnx --output resnet18_mask_rcnn.onnx
"""

from __future__ import annotations

import argparse
import contextlib
import math
import operator
import os
import sys
import warnings
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from tools.args import image_size, script_parser  # noqa: E402

FORMATS = ("onnx", "torchscript", "exported-program")
WHAT = ("backbone", "model")
#: What detectron2's TracingAdapter path writes (it has no torch.export program).
MODEL_FORMATS = ("onnx", "torchscript")
#: The export size of a model that takes any size (rounded up to its size divisibility),
#: and the second size checked for a dynamic export: no side a multiple of 32.
EXPORT_SIZE = (320, 416)
SECOND_SIZE = (289, 383)
#: ONNX opset: 18 is the first whose Resize has ``antialias`` (see ``register_onnx_symbolics``);
#: onnxruntime 1.20 runs up to 21.
OPSET = 18
DEFAULT_RTOL = 1e-4


class ExportError(RuntimeError):
    """The export itself failed: the message names the operator or construct."""


def argument_parser() -> argparse.ArgumentParser:
    parser = script_parser(__doc__)
    parser.add_argument("--config-file", required=True, metavar="FILE", help="a YAML config or a LazyConfig (.py)")
    parser.add_argument("--weights", default=None, metavar="FILE", help="a detectron2 checkpoint (default: the config's)")
    parser.add_argument("--format", required=True, choices=FORMATS, dest="fmt")
    parser.add_argument("--output", required=True, metavar="FILE", help="the file to write")
    parser.add_argument("--dynamic", action="store_true", help="dynamic N, H and W (models that take any size)")
    parser.add_argument("--what", default="backbone", choices=WHAT, help="what to export (default: %(default)s)")
    parser.add_argument("--size", type=image_size, default=None, help="backbone export size HEIGHTxWIDTH (default 320x416)")
    parser.add_argument("--image", default=None, metavar="FILE", help="--what model: the test image (default: a shapes image)")
    parser.add_argument("--rtol", type=float, default=DEFAULT_RTOL, help="largest relative difference accepted")
    parser.add_argument("--package", default="generated", help="the generated package (default: %(default)s)")
    parser.add_argument("--package-root", default=None, metavar="DIR", help="directory holding --package")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of a failed export")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides, as for tools/train_net.py")
    return parser


# ------------------------------------------------------------------------- the module


def build_backbone(args):
    """The backbone (with its neck) the config's model names, in eval mode on the CPU."""
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import instantiate
    from detectron2.modeling import build_model

    from tools import train_net

    cfg = train_net.build_config(args)
    if train_net.is_lazy_config(args.config_file):
        model = nn.Module()
        model.backbone = instantiate(cfg.model.backbone)
    else:
        cfg.MODEL.DEVICE = "cpu"
        train_net.ensure_backbone(cfg, args.package, args.package_root)
        model = build_model(cfg)
    if args.weights:
        DetectionCheckpointer(model).load(args.weights)
    return model.backbone.eval()


class Levels(nn.Module):
    """``image`` -> one map per level, in the backbone's ``output_shape()`` order."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.names = list(backbone.output_shape())

    def forward(self, image):
        maps = self.backbone(image)
        return tuple(maps[name] for name in self.names)


def bottom_up(backbone):
    return getattr(backbone, "bottom_up", backbone)


def sizes(backbone, requested) -> Tuple[Tuple[int, int], Tuple[int, int], bool]:
    """The export size, the second size, and whether the model takes any size."""
    net = bottom_up(backbone)
    if net.FIXED_INPUT_SIZE:  # built at one size: the exported graph takes that one
        side = net.img_size or net.INPUT_SIZE[0]
        return (side, side), (side, side), False
    step = backbone.size_divisibility
    height, width = requested or EXPORT_SIZE
    return (math.ceil(height / step) * step, math.ceil(width / step) * step), SECOND_SIZE, True


# ------------------------------------------------------------------------- exporters


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:400]


def _bicubic_antialiased(g, image, output_size, align_corners, *scales):
    """ONNX for ``aten::_upsample_bicubic2d_aa`` (``interpolate(mode="bicubic", antialias=True)``,
    what timm's ``resample_abs_pos_embed`` runs when a ViT-like model meets a grid other than
    its pretrained one): opset 18's Resize with the same kernel. PyTorch's antialiased bicubic
    is PIL's: coefficient a = -0.5 (not -0.75), half-pixel centres, taps outside the image
    dropped and the weights renormalised (``exclude_outside``), the kernel widened by the
    scale when downsampling (``antialias``)."""
    shape = g.op("Shape", image)
    batch_channels = g.op(
        "Slice", shape, g.op("Constant", value_t=torch.tensor([0])), g.op("Constant", value_t=torch.tensor([2]))
    )
    sizes = g.op("Concat", batch_channels, g.op("Cast", output_size, to_i=7), axis_i=0)  # 7: int64
    return g.op(
        "Resize",
        image,
        _absent_input(g),  # roi
        _absent_input(g),  # scales: the sizes say it
        sizes,
        mode_s="cubic",
        cubic_coeff_a_f=-0.5,
        coordinate_transformation_mode_s="half_pixel",
        exclude_outside_i=1,
        antialias_i=1,
    )


def _absent_input(g):
    """An omitted optional ONNX input, as torch's own Resize symbolics write it (an empty
    constant instead misleads the exporter's shape inference downstream)."""
    value = g.op("prim::Constant")
    value.setType(torch._C.OptionalType.ofTensor())
    return value


def register_onnx_symbolics() -> None:
    """Teach torch's ONNX exporter the operators it has no symbolic for (idempotent)."""
    torch.onnx.register_custom_op_symbolic("aten::_upsample_bicubic2d_aa", _bicubic_antialiased, OPSET)


def export(module, example, fmt: str, output: str, dynamic: bool) -> None:
    try:
        if fmt == "onnx":
            register_onnx_symbolics()
            axes = {"image": {0: "batch", 2: "height", 3: "width"}}
            axes.update({name: {0: "batch", 2: f"{name}_height", 3: f"{name}_width"} for name in module.names})
            torch.onnx.export(
                module,
                (example,),
                output,
                input_names=["image"],
                output_names=module.names,
                dynamic_axes=axes if dynamic else None,
                opset_version=OPSET,
                dynamo=False,
            )
        elif fmt == "torchscript":
            torch.jit.trace(module, (example,), check_trace=False).save(output)
        else:
            shapes = None
            if dynamic:
                auto = torch.export.Dim.AUTO
                shapes = {"image": {0: auto, 2: auto, 3: auto}}
            program = torch.export.export(module, (example,), dynamic_shapes=shapes)
            integer_ceil_divisions(program.graph_module)
            torch.export.save(program, output)
    except Exception as exc:
        raise ExportError(f"{fmt} export failed: {_first_line(exc)}") from exc


def integer_ceil_divisions(graph_module: torch.fx.GraphModule) -> int:
    """Rewrite each ``math.ceil(a / b)`` on sizes in an exported graph as ``-(-a // b)``.

    timm computes sizes with ``math.ceil`` (``get_same_padding``, MobileViT's patch grid,
    hybrid ViTs' embedding); with dynamic shapes the call stays in the graph, and
    ``torch.export.save`` cannot serialise it (``math.ceil`` is no symbolic operator it
    writes). The integer form is the same size for ``b > 0`` and uses only operators it
    writes. A ``ceil`` of anything else is left as it is (and the save names it).
    Returns the number rewritten."""
    def value(arg):
        return arg.meta.get("val") if isinstance(arg, torch.fx.Node) else arg

    graph = graph_module.graph
    rewritten = 0
    for node in list(graph.nodes):
        division = node.args[0] if node.target is math.ceil and len(node.args) == 1 else None
        if not (isinstance(division, torch.fx.Node) and division.target is operator.truediv):
            continue
        numerator, denominator = division.args
        if not all(isinstance(value(arg), (int, torch.SymInt)) for arg in (numerator, denominator)):
            continue
        with graph.inserting_before(node):
            negated = graph.call_function(operator.neg, (numerator,))
            floored = graph.call_function(operator.floordiv, (negated, denominator))
            ceiled = graph.call_function(operator.neg, (floored,))
        negated.meta["val"] = -value(numerator)
        floored.meta["val"] = negated.meta["val"] // value(denominator)
        ceiled.meta["val"] = -floored.meta["val"]
        for new in (negated, floored, ceiled):
            new.meta.update({key: node.meta[key] for key in ("stack_trace", "nn_module_stack") if key in node.meta})
        node.replace_all_uses_with(ceiled)
        graph.erase_node(node)
        if not division.users:
            graph.erase_node(division)
        rewritten += 1
    if rewritten:
        graph_module.recompile()
    return rewritten


def runner(fmt: str, output: str):
    """A function image (torch) -> list of numpy maps, from the file written."""
    if fmt == "onnx":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 4  # its errors reach the caller as exceptions; no log lines besides
        session = onnxruntime.InferenceSession(output, options, providers=["CPUExecutionProvider"])
        return lambda image: session.run(None, {"image": image.numpy()})
    if fmt == "torchscript":
        loaded = torch.jit.load(output)
    else:
        loaded = torch.export.load(output).module()

    def run(image):
        with torch.no_grad():
            return [t.numpy() for t in loaded(image)]

    return run


def seeded_image(size: Tuple[int, int], batch: int = 1) -> torch.Tensor:
    return torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(0))


def compare(module, run, image) -> Dict[str, Tuple[float, float]]:
    """Largest absolute and relative difference per output, file vs eager, on ``image``;
    shapes (the number of detections) and integer outputs (classes, image size) must be
    equal. A :class:`Detector`'s detections are compared as sets: each eager detection
    with the file's that matches it (:func:`match_detections`), whatever their order."""
    import numpy as np

    with torch.no_grad():
        eager = [t.numpy() for t in module(image)]
    exported = run(image)
    if isinstance(module, Detector):
        exported = match_detections(module.names, exported, eager)
    diffs = {}
    for name, a, b in zip(module.names, exported, eager):
        if a.shape != b.shape:
            raise ValueError(f"{name}: shape {a.shape} from the file, {b.shape} eager")
        if not np.issubdtype(b.dtype, np.floating):
            if not np.array_equal(a, b):
                raise ValueError(f"{name}: {int((a != b).sum())} of {a.size} values differ from eager")
            diffs[name] = (0.0, 0.0)
            continue
        absolute = float(np.abs(a.astype(np.float64) - b).max()) if b.size else 0.0
        diffs[name] = (absolute, absolute / max(float(np.abs(b).max()) if b.size else 0.0, 1e-12))
    return diffs


# ------------------------------------------------------------------------- the detector


def tracing_adapter_class():
    """detectron2's ``TracingAdapter``. detectron2 v0.6's ``detectron2/export/__init__.py``
    imports caffe2, which torch no longer ships; the adapter itself (``export/flatten.py``)
    needs none of it, so on v0.6 it is imported without that ``__init__``."""
    try:
        from detectron2.export import TracingAdapter

        return TracingAdapter
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != "caffe2":
            raise
    import importlib
    import types

    import detectron2

    package = types.ModuleType("detectron2.export")
    package.__path__ = [str(Path(detectron2.__file__).parent / "export")]
    sys.modules["detectron2.export"] = package
    package.TracingAdapter = importlib.import_module("detectron2.export.flatten").TracingAdapter
    return package.TracingAdapter


def build_detector(args):
    """The model the config builds, its input format and its test-time transforms."""
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import instantiate
    from detectron2.data import detection_utils
    from detectron2.modeling import build_model

    from tools import train_net

    cfg = train_net.build_config(args)
    if train_net.is_lazy_config(args.config_file):
        model = instantiate(cfg.model)
        mapper = cfg.dataloader.test.mapper
        transforms, image_format = instantiate(mapper.augmentations), mapper.image_format
    else:
        cfg.MODEL.DEVICE = "cpu"
        train_net.ensure_backbone(cfg, args.package, args.package_root)
        model = build_model(cfg)
        transforms, image_format = detection_utils.build_augmentation(cfg, is_train=False), cfg.INPUT.FORMAT
    if args.weights:
        DetectionCheckpointer(model).load(args.weights)
    return model.eval(), image_format, transforms


def test_image(path, image_format: str, transforms):
    """``path`` (or the shapes dataset's first image) read as ``image_format``, through
    the config's test transforms, as a 3 x H x W float tensor: what the detector gets."""
    import detectron2.data.transforms as T
    from detectron2.data import detection_utils

    if path:
        image = detection_utils.read_image(path, format=image_format)
    else:
        from PIL import Image

        from tools import shapes_dataset

        image, _ = shapes_dataset.draw_image(shapes_dataset.PRESETS["shapes"], "val", 0)  # RGB
        image = detection_utils.convert_PIL_to_numpy(Image.fromarray(image), image_format)
    image, _ = T.apply_transform_gens(transforms, image)
    return torch.as_tensor(image.astype("float32").transpose(2, 0, 1).copy())


def output_names(schema) -> List[str]:
    """The flattened outputs' names from TracingAdapter's ``outputs_schema``: the
    ``Instances`` field names (``pred_boxes`` ...) and ``image_size``, prefixed by the list
    index where the model returns more than one image."""
    keys = getattr(schema, "keys", None)
    children = getattr(schema, "schemas", None)
    if children is None:
        return [""]
    labels = list(keys) if keys is not None else [str(i) for i in range(len(children))]
    names = []
    for label, child in zip(labels, children):
        names += [".".join(part for part in (label, name) if part) for name in output_names(child)]
    if type(schema).__name__ == "InstancesSchema":
        names.append("image_size")
    return names


class Detector(nn.Module):
    """``image`` (3 x H x W) -> the flattened ``Instances`` of the detector's inference."""

    def __init__(self, model, image):
        super().__init__()
        from detectron2.modeling.meta_arch import GeneralizedRCNN

        inference = None  # one-stage detectors: the model's own eval forward
        if isinstance(model, GeneralizedRCNN):

            def inference(model, inputs):  # noqa: F811 (ROI masks, as export_model.py)
                return [{"instances": model.inference(inputs, do_postprocess=False)[0]}]

        self.adapter = tracing_adapter_class()(model, [{"image": image}], inference)
        with torch.no_grad():
            outputs = self.adapter(image)  # also fills outputs_schema
        self.detections = len(outputs[0])  # the first field: one row per detection
        names = output_names(self.adapter.outputs_schema)
        short = [name.rsplit(".", 1)[-1] for name in names]
        self.names = short if len(set(short)) == len(short) else [name.replace(".", "_") for name in names]

    def forward(self, image):
        return self.adapter(image)


#: The per-detection outputs :func:`match_detections` pairs detections by; every other
#: per-detection output (masks, keypoints) follows the pairing.
MATCH_KEYS = ("pred_classes", "pred_boxes", "scores")


def match_detections(names: Sequence[str], exported: Sequence, eager: Sequence) -> list:
    """The file's detections reordered to pair with eager's, one to one.

    A detector sorts its detections by score; where scores tie to within float error (an
    untrained head scores everything alike), eager and the file may rank the same boxes
    differently, and comparing by position would report that as a difference. Each eager
    detection, in order, takes the unpaired detection of the file of the same class whose
    box and score are nearest (largest absolute difference); every per-detection output
    (one row per detection) is permuted alike. A detection of the file with no counterpart
    still pairs with its nearest, so a real difference stays a difference in the check.
    """
    import numpy as np

    fields = {name: i for i, name in enumerate(names)}
    if not all(key in fields for key in MATCH_KEYS):  # not one image's Instances
        return list(exported)
    count = len(eager[fields["scores"]])
    rows = {i for i, name in enumerate(names) if name != "image_size"}
    if any(exported[i].shape[:1] != eager[i].shape[:1] for i in rows):
        return list(exported)  # compare reports the shapes

    def boxes_and_scores(outputs):  # one row per detection
        box, score = outputs[fields["pred_boxes"]], outputs[fields["scores"]]
        return np.concatenate([box.reshape(count, -1), score.reshape(count, 1)], 1).astype(np.float64)

    distance = np.abs(boxes_and_scores(eager)[:, None] - boxes_and_scores(exported)[None]).max(-1)
    same_class = eager[fields["pred_classes"]][:, None] == exported[fields["pred_classes"]][None]
    order, free = [], np.ones(count, dtype=bool)
    for j in range(count):
        candidates = free & same_class[j] if (free & same_class[j]).any() else free
        i = int(np.argmin(np.where(candidates, distance[j], np.inf)))
        order.append(i)
        free[i] = False
    return [a[order] if i in rows else a for i, a in enumerate(exported)]


def export_detector(module: "Detector", image, fmt: str, output: str) -> None:
    try:
        if fmt == "onnx":
            register_onnx_symbolics()
            torch.onnx.export(
                module.adapter,
                (image,),
                output,
                input_names=["image"],
                output_names=module.names,
                opset_version=OPSET,
                dynamo=False,
            )
        else:
            torch.jit.trace(module.adapter, (image,), check_trace=False).save(output)
    except Exception as exc:
        raise ExportError(f"{fmt} export failed: {_first_line(exc)}") from exc


def main_detector(args) -> int:
    if args.fmt not in MODEL_FORMATS:
        print(
            f"error: --what model exports through detectron2's TracingAdapter: --format {' or '.join(MODEL_FORMATS)}, not {args.fmt!r}",
            file=sys.stderr,
        )
        return 2
    if args.dynamic:
        print(
            "error: --dynamic applies to --what backbone; the traced detector is checked at its test image's size",
            file=sys.stderr,
        )
        return 2
    torch.manual_seed(0)
    try:
        model, image_format, transforms = build_detector(args)
    except (KeyError, ValueError) as exc:  # a bad override or backbone option
        print(f"error: {args.config_file}: {_first_line(exc)}", file=sys.stderr)
        return 2
    image = test_image(args.image, image_format, transforms)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = Detector(model, image).eval()
        try:
            export_detector(module, image, args.fmt, args.output)
        except ExportError as exc:
            print(f"error: {exc}", file=sys.stderr)
            if args.debug:
                raise
            return 1
        try:
            diffs = compare(module, runner(args.fmt, args.output), image)
        except Exception as exc:
            print(
                f"error: {args.output} differs from eager at 3x{image.shape[1]}x{image.shape[2]}: {_first_line(exc)}",
                file=sys.stderr,
            )
            return 1
    return report(args, [(f"3x{image.shape[1]}x{image.shape[2]}", diffs)], f"{args.fmt}, {module.detections} detections")


def report(args, checked: List[Tuple[str, Dict[str, Tuple[float, float]]]], what: str) -> int:
    """Print each check's differences per output; 1 where one is above --rtol, else 0."""
    for where, diffs in checked:
        for name, (absolute, relative) in diffs.items():
            print(f"{where} {name}: max abs diff {absolute:.3g}, max rel diff {relative:.3g}")
    worst = max((relative for _, diffs in checked for _, relative in diffs.values()), default=0.0)
    if worst > args.rtol:
        print(f"error: {args.output} differs from eager by {worst:.3g} relative (> --rtol {args.rtol})", file=sys.stderr)
        return 1
    print(f"wrote {args.output} ({what}): equal to eager within {args.rtol}")
    return 0


def main(argv: Sequence[str] = None) -> int:
    args = argument_parser().parse_args(argv)
    if not os.path.isfile(args.config_file):
        print(f"error: --config-file {args.config_file!r} is not a file", file=sys.stderr)
        return 2
    if args.weights and not os.path.isfile(args.weights):
        print(f"error: --weights {args.weights!r} is not a file", file=sys.stderr)
        return 2
    if args.image and not os.path.isfile(args.image):
        print(f"error: --image {args.image!r} is not a file", file=sys.stderr)
        return 2
    if args.what == "model":
        return main_detector(args)
    torch.manual_seed(0)
    try:
        backbone = build_backbone(args)
    except (KeyError, ValueError) as exc:  # a bad override or backbone option
        print(f"error: {args.config_file}: {_first_line(exc)}", file=sys.stderr)
        return 2
    module = Levels(backbone).eval()
    first, _, any_size = sizes(backbone, args.size)
    if args.dynamic and not any_size:
        print(f"note: {type(bottom_up(backbone)).TIMM_MODEL} takes one size: exported at {first[0]}x{first[1]}, static")
    try:
        checked = export_and_check(module, args.size, args.fmt, args.output, args.dynamic)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if args.debug:
            raise
        return 1
    dynamic = args.dynamic and any_size
    if not dynamic:
        print(f"note: static export, specialised to {first[0]}x{first[1]}{' (--dynamic for any size)' if any_size else ''}")
    return report(args, checked, f"{args.fmt}{', dynamic N, H, W' if dynamic else ''}")


def export_and_check(module: Levels, size, fmt: str, output: str, dynamic: bool) -> List[Tuple[str, Dict[str, Tuple[float, float]]]]:
    """Export ``module`` (:class:`Levels`) to ``output``, load it back and compare it with
    eager: on the export size and, for a dynamic export of a model that takes any size, on a
    batch of two at :data:`SECOND_SIZE`. Returns ``(N x 3 x H x W, differences per output)``
    per check; raises :class:`ExportError` when the export fails or the file cannot run.
    ``size``: the requested export size (None: :data:`EXPORT_SIZE`), rounded up to the
    backbone's size divisibility. What tools/dev/sweep.py's export columns run too."""
    module.eval()  # torch.onnx.export restores the mode it found: eager must compare in eval too
    first, second, any_size = sizes(module.backbone, size)
    dynamic = dynamic and any_size
    # a batch of 2 for a dynamic export: torch.export specialises a dimension of size 1
    example = torch.zeros(2 if dynamic else 1, 3, *first)
    checked = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export(module, example, fmt, output, dynamic)
        try:
            run = runner(fmt, output)
        except Exception as exc:  # onnxruntime refuses the graph, or the program does not load
            raise ExportError(f"{output} was written but does not load: {_first_line(exc)}") from exc
        for (height, width), batch in [(first, 1)] + ([(second, 2)] if dynamic else []):
            where = f"{batch}x3x{height}x{width}"
            try:
                checked.append((where, compare(module, run, seeded_image((height, width), batch))))
            except Exception as exc:
                raise ExportError(f"{output} fails at {where}: {_first_line(exc)}") from exc
    return checked


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
