"""Small helpers shared by the generator and backbone tests (one place, no copies).

Everything that runs ``d2timm-gen`` goes through :func:`cli` (in-process, fast) or
:func:`cli_subprocess` (the installed console script, for exit codes and environment
variables such as ``PYTHONHASHSEED``). Generations shared between tests are built once
per test session, across pytest-xdist workers, by :func:`shared_dir`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from generator.compat import skip_meta_init

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "generated" / "MANIFEST.json"
LOCK_NAME = ".d2timm-gen.lock"

#: The small selection the CLI, drift, write and determinism tests generate.
SMALL_MODELS: Tuple[str, ...] = ("convnext_atto", "resnet18")
SMALL_PACKAGE = "pkg_small"


# ----------------------------------------------------------------------------- the CLI


def cli(*args: str, catch_exceptions: bool = True):
    """Run ``d2timm-gen ARGS`` in-process (click's CliRunner); returns its Result with
    ``exit_code``, ``stdout`` and ``stderr``."""
    from click.testing import CliRunner

    from generator.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=catch_exceptions)


def console_script() -> List[str]:
    """The installed ``d2timm-gen`` (next to this interpreter), else ``python -m generator.cli``."""
    script = Path(sys.executable).with_name("d2timm-gen")
    return [str(script)] if script.exists() else [sys.executable, "-m", "generator.cli"]


def subprocess_env(**extra: str) -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(extra)
    return env


def cli_subprocess(
    *args: str, cwd: Optional[Path] = None, timeout: float = 600, **env: str
) -> subprocess.CompletedProcess:
    """Run the real ``d2timm-gen ARGS`` in a fresh process (``env`` adds variables)."""
    return subprocess.run(
        console_script() + [str(a) for a in args],
        cwd=str(cwd or ROOT),
        env=subprocess_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def python_subprocess(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -c CODE`` from the repository root with this interpreter."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=str(ROOT),
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def generate_small(root: Path, *, jobs: int = 1, hashseed: str = "0", package: str = SMALL_PACKAGE) -> None:
    """``d2timm-gen generate SMALL_MODELS`` into ``root`` in a fresh process; fails loudly."""
    result = cli_subprocess(
        "generate", *SMALL_MODELS, "--package", package, "--output", root, "--jobs", str(jobs), PYTHONHASHSEED=hashseed
    )
    if result.returncode != 0:
        raise AssertionError(f"d2timm-gen generate failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


def check_small(root: Path, *args: str):
    """``d2timm-gen check`` of the small package under ``root`` (in-process)."""
    return cli("check", "--package", SMALL_PACKAGE, "--output", root, "--jobs", "1", *args)


def generate_small_cli(root: Path, *args: str):
    """``d2timm-gen generate`` of the small package under ``root`` (in-process); must succeed."""
    result = cli("generate", "--package", SMALL_PACKAGE, "--output", root, "--jobs", "1", *args)
    assert result.exit_code == 0, result.output
    return result


#: The kinds of change a text report lists, one ``KIND path`` line each.
REPORT_KINDS = ("ADDED ", "REMOVED ", "CHANGED ", "HAND_EDITED ", "STALE_SEED ")


def reported(result) -> set:
    """The ``KIND path`` lines of a text report."""
    return {line for line in result.stdout.splitlines() if line.startswith(REPORT_KINDS)}


def summary_line(output: str) -> str:
    """The one-line summary ``generate`` prints last."""
    lines = [line for line in output.splitlines() if " models generated, " in line]
    assert lines, f"no summary line in:\n{output}"
    return lines[-1]


# ------------------------------------------------------------------------ file trees


def tree_bytes(root: Path, skip: Iterable[str] = (LOCK_NAME,)) -> Dict[str, bytes]:
    """Every file under ``root`` (relative POSIX path -> bytes), without caches."""
    skipped = set(skip)
    out = {}
    for path in sorted(Path(root).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.name not in skipped:
            out[path.relative_to(root).as_posix()] = path.read_bytes()
    return out


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", LOCK_NAME))
    return dst


def shared_dir(tmp_path_factory, key: str, build: Callable[[Path], None]) -> Path:
    """A directory built once per test session, shared by every pytest-xdist worker.

    The first worker to get here builds it (under a file lock); the others wait and
    reuse it. Tests must treat it as read-only (copy it with :func:`copy_tree` first).
    """
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by the workers of this session
    target = base / f"shared-{key}"
    done = base / f"shared-{key}.done"
    with FileLock(str(base / f"shared-{key}.lock")):
        if not done.exists():
            if target.exists():
                shutil.rmtree(target)
            build(target)
            done.touch()
    return target


# ---------------------------------------------------------------- manifests and specs


def load_json(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=4)
def manifest_of(package_dir: Path) -> dict:
    """A package's MANIFEST.json, read once per process (read-only)."""
    return load_json(Path(package_dir) / "MANIFEST.json")


def write_json(path: Path, data: Mapping) -> None:
    """Write a manifest the way the generator does (so only the edited value differs)."""
    from generator.spec import canonical_json

    Path(path).write_text(canonical_json(data), encoding="utf-8")


def edit_manifest(root: Path, package: str, edit: Callable[[dict], None]) -> None:
    path = Path(root) / package / "MANIFEST.json"
    manifest = load_json(path)
    edit(manifest)
    write_json(path, manifest)


def repo_models() -> List[Tuple[str, str]]:
    """(model, family) of every model in the checked-in package, sorted by name."""
    models = load_json(MANIFEST)["models"]
    return sorted((name, spec["facts"]["family"]) for name, spec in models.items())


def golden_facts(stem: str):
    """The hand-written facts ``tests/golden/specs/<stem>.json``."""
    from generator.spec import ModelFacts

    return ModelFacts.from_dict(load_json(ROOT / "tests" / "golden" / "specs" / f"{stem}.json"))


def facts_with(stem: str = "resnet_like", **changes):
    """Golden facts with some fields replaced (``features`` as a list of
    (module, channels, stride) or of FeatureFacts)."""
    import dataclasses

    from generator.spec import FeatureFacts

    facts = golden_facts(stem)
    features = changes.pop("features", None)
    if features is not None:
        changes["features"] = tuple(
            (
                f
                if isinstance(f, FeatureFacts)
                else FeatureFacts(index=i, module=f[0], path=f[0], channels=f[1], reduction=f[2], stride=f[2])
            )
            for i, f in enumerate(features)
        )
    return dataclasses.replace(facts, **changes)


def strided(*strides: int):
    """Facts whose levels have these strides (modules ``stages.<i>``)."""
    return facts_with(features=[(f"stages.{i}", 32 * (i + 1), s) for i, s in enumerate(strides)])


# ------------------------------------------------------------------------- detectron2


@functools.lru_cache(maxsize=None)
def _parsed_yaml(text: str):
    import yaml

    return yaml.load(text, Loader=yaml.SafeLoader)  # what yaml.safe_load does, unpatched


@contextlib.contextmanager
def yaml_parsed_once():
    """detectron2's ``merge_from_file`` with each YAML text parsed once per process (a copy
    each time, as fvcore merges into what it loaded): the catalog reads each model's seeds
    and the bases they share four times."""
    import copy
    from unittest import mock

    import fvcore.common.config as fvcore_config

    def safe_load(stream):
        return copy.deepcopy(_parsed_yaml(stream.read() if hasattr(stream, "read") else stream))

    with mock.patch.object(fvcore_config.yaml, "safe_load", safe_load):
        yield


def model_config(
    model: str,
    family: str,
    fpn: bool = True,
    overrides: Sequence = (),
    root: Path = ROOT,
    package: str = "generated",
    register: bool = True,
):
    """A detectron2 config from the emitted YAML seed of ``model``, extended with the
    generated keys and (``register``) its backbone registered, the way users load it."""
    import importlib

    from detectron2.config import get_cfg

    generated = importlib.import_module(package)
    cfg = get_cfg()
    generated.add_timm_config(cfg)
    with yaml_parsed_once():
        cfg.merge_from_file(str(Path(root) / "configs" / family / f"{model}{'_fpn' if fpn else ''}.yaml"))
    if overrides:
        cfg.merge_from_list([str(v) if not isinstance(v, str) else v for v in overrides])
    if register:
        assert generated.ensure_registered(cfg), cfg.MODEL.BACKBONE.NAME
    return cfg


def generated_class(model: str, package: str = "generated"):
    """The backbone class a generated package holds for ``model``."""
    import importlib

    module = importlib.import_module(package).model_module(model)
    return next(v for v in vars(module).values() if getattr(v, "TIMM_MODEL", None) == model)


def build_backbone(cfg, device: Optional[str] = None):
    """detectron2's ``build_backbone`` (on ``device`` given as a default-device context)."""
    import contextlib

    import torch
    from detectron2.modeling import build_backbone as d2_build

    with torch.device(device) if device else contextlib.nullcontext():
        return d2_build(cfg)


def classifier_key(key: str, keys) -> str:
    """The classifier's name of a parameter of timm's features_only model: the features
    wrappers prefix ``model.`` or ``body.``, or flatten ``stem.conv1`` to ``stem_conv1``."""
    key = key.removeprefix("model.").removeprefix("body.")
    first, _, rest = key.partition(".")
    candidates = [key] + [f"{first[:i]}.{first[i + 1:]}" + (f".{rest}" if rest else "") for i, c in enumerate(first) if c == "_"]
    for candidate in candidates:
        if candidate in keys:
            return candidate
    raise AssertionError(f"{key}: no such parameter in the classifier")


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


# ---------------------------------------------------------------------- the catalog probe

#: Images as a user's dataset gives them (H, W): COCO's landscape and portrait sizes and an
#: odd one. The probe resizes them with the YAML's own test transform; detectron2 pads them.
USER_IMAGES = ((427, 640), (640, 427), (333, 517))
#: A batch of two for a DETR-style detector, which pads only to the largest image.
DETR_BATCH = ((375, 500), (480, 359))
FPN_CHANNELS = 256


def transformed_size(augmentations, size: Tuple[int, int]) -> Tuple[int, int]:
    """The size an image of ``size`` has after ``augmentations``, each deciding its
    transform from the image as it does in detectron2's DatasetMapper. A transform that
    states its output size (a resize) is not applied to pixels; any other is."""
    import numpy as np

    image = np.broadcast_to(np.zeros((1, 1, 3), dtype=np.uint8), (*size, 3))  # no memory
    for augmentation in augmentations:
        transform = augmentation.get_transform(image)
        if hasattr(transform, "new_h") and hasattr(transform, "new_w"):
            image = np.broadcast_to(np.zeros((1, 1, 3), dtype=np.uint8), (transform.new_h, transform.new_w, 3))
        else:
            image = transform.apply_image(np.ascontiguousarray(image))
    return tuple(image.shape[:2])


def config_test_size(cfg, size: Tuple[int, int]) -> Tuple[int, int]:
    """The size an image of ``size`` has after the config's own test transforms, as
    detectron2's DatasetMapper applies them (``build_augmentation(cfg, is_train=False)``)."""
    from detectron2.data import detection_utils

    return transformed_size(detection_utils.build_augmentation(cfg, is_train=False), size)


def not_a_multiple(size: Tuple[int, int], step: int = 32) -> Tuple[int, int]:
    """``size`` with each side that is a multiple of ``step`` shortened by one pixel."""
    return tuple(side - 1 if side % step == 0 else side for side in size)


#: The test resize (shortest side, longest side) the catalog probe sets, as a user edit,
#: for the few models measured on real tensors (``meta_forward`` false: their forward reads
#: tensor values): real compute at detection sizes would take minutes each.
REAL_TENSOR_TEST_SIZE = (96, 160)


def build_meta_model(cfg, device: str = "meta"):
    """detectron2's ``build_model`` on the meta device (no memory, weights not
    initialised), or on ``device``."""
    import contextlib

    import torch
    from detectron2.modeling import build_model

    cfg = cfg.clone()
    cfg.MODEL.DEVICE = device
    meta = device == "meta"
    with skip_meta_init() if meta else contextlib.nullcontext(), torch.device(device):
        return build_model(cfg).eval()


def probe_device(model: str, root: Path = ROOT, package: str = "generated") -> str:
    """Where the catalog probe runs ``model``: the meta device, or the CPU for a model
    whose forward reads tensor values."""
    return "meta" if manifest_of(Path(root) / package)["models"][model]["facts"]["meta_forward"] else "cpu"


def shape_only():
    """Shape-only kernels for meta forwards (generator/introspect.py; their shapes and
    shape errors are checked against real calls in tests/test_introspect.py)."""
    from generator.introspect import _shape_only_mode

    return _shape_only_mode()


def _forward_key(x):
    return (tuple(x.shape), x.stride(), x.dtype, x.device.type)


def record_meta_forward(module):
    """A forward hook on ``module`` that keeps each output by its input's shape, for
    :func:`memoize_meta_forward`; returns ``(outputs, handle)``."""
    outputs = {}
    handle = module.register_forward_hook(lambda m, args, out: outputs.setdefault(_forward_key(args[0]), out))
    return outputs, handle


def memoize_meta_forward(module, outputs=None) -> None:
    """``module``'s forward computed once per input shape (``outputs``: those already
    computed, from :func:`record_meta_forward`). On the meta device its outputs depend on
    the input's shape alone; the catalog probe runs one bottom-up through the plain variant
    and the FPN (the DETR batch), and through the LazyConfig seed's, RetinaNet's and
    Panoptic FPN's necks at the first user image's size, which the YAML seed ran first."""
    forward = module.forward
    outputs = {} if outputs is None else outputs

    def memoized(x):
        key = _forward_key(x)
        if key not in outputs:
            outputs[key] = forward(x)
        return outputs[key]

    module.forward = memoized


def probe_catalog_model(
    model: str, family: str, root: Path = ROOT, package: str = "generated", tasks: Sequence[str] = ()
) -> None:
    """Check ``model`` the way a user's detector runs it, on the meta device.

    - detectron2's ``build_model`` from the emitted ``_fpn.yaml``; images of
      :data:`USER_IMAGES` resized by that YAML's own test transform, then the model's own
      ``preprocess_image`` (which pads to what the backbone reports) and ``model.backbone``:
      the declared names and channels, maps of ceil(padded / stride), and the backbone's
      own padding a no-op (timm's model sees the batch detectron2 padded);
    - a DETR-style detector that pads a batch of two images only to its largest (neither
      side a multiple of 32): the plain backbone (read in ``output_shape()`` order, the
      last level for DETR) and the FPN give maps of ceil(batch / stride), and DETR's mask,
      resized to the last map, lines up with it;
    - the plain seed builds the same backbone configuration with its own builder;
    - the LazyConfig seed (:func:`probe_lazy_seed`), and the seeds of ``tasks``
      (:func:`probe_task_seed`).
    """
    import torch
    import torch.nn.functional as F
    from detectron2.modeling import BACKBONE_REGISTRY
    from detectron2.structures import ImageList

    device = probe_device(model, root, package)
    small = [] if device == "meta" else ["INPUT.MIN_SIZE_TEST", REAL_TENSOR_TEST_SIZE[0], "INPUT.MAX_SIZE_TEST", REAL_TENSOR_TEST_SIZE[1]]
    cfg = model_config(model, family, root=root, package=package, overrides=small)
    net = build_meta_model(cfg, device)
    fpn = net.backbone
    plain, cls = fpn.bottom_up, type(fpn.bottom_up)
    assert cls.TIMM_MODEL == model
    # declared: the FPN levels the heads read, the plain outputs the YAML names
    shapes = fpn.output_shape()
    assert list(shapes) == list(cfg.MODEL.RPN.IN_FEATURES)
    assert list(cfg.MODEL.ROI_HEADS.IN_FEATURES) == list(shapes)[:-1]
    assert {n: (s.channels, s.stride) for n, s in shapes.items()} == {
        n: (FPN_CHANNELS, 2 ** int(n[1:])) for n in cfg.MODEL.RPN.IN_FEATURES
    }
    config = cfg.MODEL.BACKBONE.CONFIG
    plain_shapes = plain.output_shape()
    assert list(plain_shapes) == list(config.REMAPS)
    assert [s.stride for s in plain_shapes.values()] == list(config.STRIDES)
    assert [s.channels for s in plain_shapes.values()] == list(config.CHANNELS)
    assert list(cfg.MODEL.FPN.IN_FEATURES) == list(cls.FPN_IN_FEATURES)
    # what the YAML comment states detectron2 pads to, the backbones report at run time
    spec = manifest_of(Path(root) / package)["models"][model]
    assert (plain.size_divisibility, fpn.size_divisibility) == (spec["size_divisibility"], spec["fpn_size_divisibility"])
    assert plain.size_divisibility == cls.SIZE_DIVISIBILITY

    def expect(named_shapes, height, width, batch=1):
        return {n: (batch, s.channels, ceil_div(height, s.stride), ceil_div(width, s.stride)) for n, s in named_shapes.items()}

    seen = []
    hook = plain.body.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape[-2:])))
    computed, record = record_meta_forward(plain) if device == "meta" else ({}, None)
    try:
        with shape_only(), torch.no_grad():
            for size in USER_IMAGES:
                h, w = config_test_size(cfg, size)
                images = net.preprocess_image([{"image": torch.zeros(3, h, w, device=device)}])
                padded = tuple(images.tensor.shape[-2:])
                seen.clear()
                maps = net.backbone(images.tensor)
                assert {n: tuple(t.shape) for n, t in maps.items()} == expect(shapes, *padded), (model, size, padded)
                if not plain.INPUT_PAD and fpn.size_divisibility % plain.size_divisibility == 0:
                    assert seen == [padded], f"{model}: detectron2 padded to {padded}, the backbone padded again to {seen}"
            if device == "meta":  # from here on, sizes come back: compute each once
                record.remove()
                memoize_meta_forward(plain, computed)
            # DETR-style: pad only to the batch's largest image
            sizes = [not_a_multiple(config_test_size(cfg, size)) for size in DETR_BATCH]
            images = ImageList.from_tensors([torch.zeros(3, h, w, device=device) for h, w in sizes])
            batch_h, batch_w = images.tensor.shape[-2:]
            features = plain(images.tensor)
            assert list(features) == list(plain_shapes)
            assert {n: tuple(t.shape) for n, t in features.items()} == expect(plain_shapes, batch_h, batch_w, 2), model
            last = features[list(plain_shapes)[-1]]
            mask = torch.ones(2, batch_h, batch_w, dtype=torch.bool, device=device)
            mask = F.interpolate(mask[None].float(), size=last.shape[-2:]).to(torch.bool)[0]
            assert tuple(mask.shape[-2:]) == tuple(last.shape[-2:])
            maps = fpn(images.tensor)
            assert {n: tuple(t.shape) for n, t in maps.items()} == expect(shapes, batch_h, batch_w, 2), model
    finally:
        hook.remove()
        if record is not None:
            record.remove()
    # the plain seed: its own registered builder, the same backbone CONFIG and input rule
    plain_cfg = model_config(model, family, fpn=False, root=root, package=package, overrides=small)
    assert plain_cfg.MODEL.BACKBONE.NAME == f"build_{model}_backbone"
    assert plain_cfg.MODEL.BACKBONE.NAME in BACKBONE_REGISTRY
    assert plain_cfg.MODEL.BACKBONE.CONFIG == config
    assert plain_cfg.INPUT == cfg.INPUT
    assert list(plain_cfg.MODEL.RPN.IN_FEATURES) == [cls.OUT_FEATURES[-1]]
    probe_lazy_seed(model, family, cfg, root, device, bottom_up=plain)
    for task in tasks:
        probe_task_seed(model, family, task, plain, cfg, root, package, device)


#: The tasks besides Mask R-CNN the catalog probe builds models into, from the seeds
#: `d2timm-gen seed` writes: a one-stage detector reading P3-P7 and a segmentation head.
CATALOG_TASKS = ("retinanet", "panoptic_fpn")
#: The lines of a seed that name the model or describe timm's side of its levels: comments,
#: the builder's name, timm's module names, their channels, the pixel statistics. The neck
#: and heads a task builds never read them (the neck's lateral convolutions take the declared
#: channels, which the catalog probe checks timm's maps have, model by model).
IDENTITY_LINE = re.compile(r"^\s*(#|NAME:|OUT_FEATURES:|CHANNELS:|PIXEL_MEAN:|PIXEL_STD:|REMOVE_LAYERS:)")


def task_probe_signature(model: str, family: str, task: str, root: Path = ROOT, package: str = "generated"):
    """Everything ``task``'s seed probe depends on, for ``model``: the seed as `d2timm-gen
    seed` renders it and the FPN seed it builds on, but for :data:`IDENTITY_LINE`'s lines
    (the model's name made generic), and what the backbone reports to detectron2 (its size
    divisibilities) and where it runs. Two models with the same signature build the same
    neck and heads over the same levels, strides and padded sizes."""
    from generator.render import render_task_seed
    from generator.spec import ModelFacts, make_spec

    entry = manifest_of(Path(root) / package)["models"][model]
    spec = make_spec(ModelFacts.from_dict(entry["facts"]))
    ((_, seed),) = render_task_seed(spec, task, "yaml", package).items()
    base = (Path(root) / "configs" / family / f"{model}_fpn.yaml").read_text()

    def lines(text):
        return tuple(line.replace(model, "<model>") for line in text.splitlines() if line.strip() and not IDENTITY_LINE.match(line))

    backbone = (entry["size_divisibility"], entry["fpn_size_divisibility"], entry["facts"]["meta_forward"])
    return task, lines(seed), lines(base), backbone


def task_probe_models(models: Sequence[Tuple[str, str]], root: Path = ROOT, package: str = "generated") -> Dict[str, Tuple[str, ...]]:
    """The :data:`CATALOG_TASKS` the catalog probe runs for each of ``models``: each task for
    the first model (by name) of each :func:`task_probe_signature`. What the heads see of a
    model is its signature; what the model gives them, the catalog probe checks for every
    model. 1371 models, 74 signatures per task (timm 1.0.31)."""
    first: Dict[tuple, str] = {}
    for model, family in sorted(models):
        for task in CATALOG_TASKS:
            first.setdefault(task_probe_signature(model, family, task, root, package), model)
    tasks: Dict[str, Tuple[str, ...]] = {model: () for model, _ in models}
    for (task, *_), model in first.items():  # in CATALOG_TASKS order for each model
        tasks[model] += (task,)
    return tasks


def task_seed_config(model: str, family: str, task: str, root: Path = ROOT, package: str = "generated", overrides=()):
    """The detectron2 config of ``model``'s YAML seed for ``task``, as `d2timm-gen seed`
    renders it (from the manifest's spec), on top of the model's FPN seed in ``root``."""
    import tempfile

    from detectron2.config import get_cfg

    from generator.render import render_task_seed
    from generator.spec import ModelFacts, make_spec

    generated = __import__(package)
    spec = make_spec(ModelFacts.from_dict(manifest_of(Path(root) / package)["models"][model]["facts"]))
    ((path, text),) = render_task_seed(spec, task, "yaml", package).items()
    base = f'_BASE_: "{model}_fpn.yaml"'
    assert base in text, text
    text = text.replace(base, f'_BASE_: "{Path(root) / "configs" / family / f"{model}_fpn.yaml"}"')
    cfg = get_cfg()
    generated.add_timm_config(cfg)
    with tempfile.TemporaryDirectory() as scratch:
        seed = Path(scratch) / Path(path).name
        seed.write_text(text)
        with yaml_parsed_once():
            cfg.merge_from_file(str(seed))
    if overrides:
        cfg.merge_from_list([str(v) if not isinstance(v, str) else v for v in overrides])
    return cfg


def probe_task_seed(model, family, task, bottom_up, fpn_cfg, root: Path = ROOT, package: str = "generated", device="meta"):
    """``model``'s seed for ``task`` builds into detectron2's meta-architecture through
    ``build_model`` (the generated backbone ``bottom_up`` reused, since the seed keeps the
    FPN seed's backbone keys, ``fpn_cfg``'s); an image after the seed's own test resize goes through the
    detector's ``preprocess_image``, its neck and its heads: every level a head reads, of
    ceil(padded / stride); a semantic map, cropped back, of the image's size."""
    from unittest import mock

    import torch
    from detectron2.modeling import BACKBONE_REGISTRY
    from detectron2.modeling.postprocessing import sem_seg_postprocess

    small = [] if device == "meta" else ["INPUT.MIN_SIZE_TEST", REAL_TENSOR_TEST_SIZE[0], "INPUT.MAX_SIZE_TEST", REAL_TENSOR_TEST_SIZE[1]]
    cfg = task_seed_config(model, family, task, root, package, overrides=small)
    runtime = importlib_module(f"{package}.runtime")
    assert cfg.MODEL.BACKBONE.CONFIG.OUT_FEATURES == fpn_cfg.MODEL.BACKBONE.CONFIG.OUT_FEATURES
    reuse = {cfg.MODEL.BACKBONE.NAME: lambda cfg, input_shape: runtime.build_fpn(bottom_up, cfg)}
    with mock.patch.dict(BACKBONE_REGISTRY._obj_map, reuse):
        net = build_meta_model(cfg, device)
    meta = cfg.MODEL.META_ARCHITECTURE
    read = {
        "RetinaNet": list(cfg.MODEL.RETINANET.IN_FEATURES),
        "SemanticSegmentor": list(cfg.MODEL.SEM_SEG_HEAD.IN_FEATURES),
    }.get(meta, list(cfg.MODEL.RPN.IN_FEATURES))
    shapes = net.backbone.output_shape()
    assert set(read) <= set(shapes), (model, task, read, list(shapes))
    h, w = config_test_size(cfg, USER_IMAGES[0])
    if meta == "SemanticSegmentor":  # it pads inside its forward (no preprocess_image): run that
        with shape_only(), torch.no_grad():
            (output,) = net([{"image": torch.zeros(3, h, w, device=device), "height": h, "width": w}])
        assert tuple(output["sem_seg"].shape) == (cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES, h, w), (model, task)
        return
    with shape_only(), torch.no_grad():
        images = net.preprocess_image([{"image": torch.zeros(3, h, w, device=device)}])
        padded = images.tensor.shape[-2:]
        maps = net.backbone(images.tensor)
        for name in read:
            assert tuple(maps[name].shape) == (1, FPN_CHANNELS, ceil_div(padded[0], shapes[name].stride), ceil_div(padded[1], shapes[name].stride)), (model, task, name)
        if meta == "RetinaNet":
            logits, deltas = net.head([maps[name] for name in read])
            assert [tuple(t.shape[-2:]) for t in logits] == [tuple(maps[name].shape[-2:]) for name in read]
        if meta == "PanopticFPN":
            semantic, _ = net.sem_seg_head(maps)
            assert tuple(semantic.shape[-2:]) == tuple(padded), (model, tuple(semantic.shape), tuple(padded))
            result = sem_seg_postprocess(semantic[0], (h, w), h, w)
            assert tuple(result.shape) == (cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES, h, w)


def importlib_module(name: str):
    import importlib

    return importlib.import_module(name)


@functools.lru_cache(maxsize=None)
def _zoo_config(path: str):
    from detectron2 import model_zoo

    return model_zoo.model_zoo.get_config(path)


def load_lazy_config(path: Path):
    """``LazyConfig.load(path)``, with the model-zoo configs a seed builds on read once
    per process (each seed gets its own copy): the catalog loads 1371 seeds."""
    import copy
    from unittest import mock

    from detectron2 import model_zoo
    from detectron2.config import LazyConfig

    def get_config(config_path: str, trained: bool = False):
        return model_zoo.model_zoo.get_config(config_path, trained) if trained else copy.deepcopy(_zoo_config(config_path))

    with mock.patch.object(model_zoo, "get_config", get_config):
        return LazyConfig.load(str(path))


def resolve_img_size(cls, value) -> int:
    """The build side a generated class resolves ``value`` to (its package's own rule)."""
    import importlib

    config = importlib.import_module(cls.__module__.split(".")[0] + ".runtime.config")
    return config.resolve_img_size(cls, value)


def lazy_seed_path(model: str, family: str, root: Path = ROOT) -> Path:
    return Path(root) / "configs" / family / f"{model}_mask_rcnn.py"


def augmented_size(augmentations, size: Tuple[int, int]) -> Tuple[int, int]:
    """The size an image of ``size`` has after a LazyConfig's ``augmentations``."""
    from detectron2.config import instantiate

    return transformed_size(instantiate(augmentations), size)


def probe_lazy_seed(
    model: str, family: str, yaml_cfg, root: Path = ROOT, device: str = "meta", bottom_up=None
) -> None:
    """The LazyConfig seed of ``model`` loads and instantiates (on the meta device) into a
    Mask R-CNN whose heads read the levels its backbone gives; a COCO image through the
    seed's own test transform and ``preprocess_image`` gives maps of ceil(padded /
    stride); a training image after its large-scale jitter fits the backbone; the pixel
    statistics and input format are the YAML seed's.

    ``bottom_up``: the generated backbone the YAML seed built. When the seed's own
    describes the same one (same class, same levels, same build side), it is used in its
    place, so that timm's model is not built twice; the neck and heads are the seed's.
    """
    import contextlib

    import torch
    from detectron2.config import instantiate

    cfg = load_lazy_config(lazy_seed_path(model, family, root))
    node = cfg.model.backbone.bottom_up
    cls = node._target_
    assert cls.TIMM_MODEL == model
    assert resolve_img_size(cls, node.get("img_size", 0)) == resolve_img_size(cls, yaml_cfg.MODEL.BACKBONE.CONFIG.IMG_SIZE)
    assert not node.pretrained and node.freeze_at == yaml_cfg.MODEL.BACKBONE.FREEZE_AT
    selection = node.get("out_features") or [node.out_feature]
    if bottom_up is not None and type(bottom_up) is cls and cls.feature_shapes(selection) == bottom_up.output_shape():
        for key in ("in_features", "in_feature"):  # resolve what the neck reads of the node first
            if key in cfg.model.backbone:
                cfg.model.backbone[key] = cfg.model.backbone[key]
        cfg.model.backbone.bottom_up = bottom_up
    if device != "meta":  # the user edit of REAL_TENSOR_TEST_SIZE
        resize = cfg.dataloader.test.mapper.augmentations[0]
        resize.short_edge_length, resize.max_size = REAL_TENSOR_TEST_SIZE
    with skip_meta_init() if device == "meta" else contextlib.nullcontext(), torch.device(device):
        net = instantiate(cfg.model).eval()
    backbone = net.backbone
    assert type(backbone.bottom_up).TIMM_MODEL == model
    shapes = backbone.output_shape()
    assert list(cfg.model.proposal_generator.in_features) == list(shapes)
    assert list(cfg.model.proposal_generator.anchor_generator.strides) == [s.stride for s in shapes.values()]
    levels = list(shapes)[:-1]
    assert list(cfg.model.roi_heads.box_in_features) == list(cfg.model.roi_heads.mask_in_features) == levels
    assert list(cfg.model.roi_heads.box_pooler.scales) == [1 / shapes[n].stride for n in levels]
    assert [s.channels for s in shapes.values()] == [FPN_CHANNELS] * len(shapes)
    assert net.input_format == "RGB" and cfg.dataloader.train.mapper.image_format == "RGB"
    assert list(cfg.model.pixel_mean) == list(yaml_cfg.MODEL.PIXEL_MEAN)
    assert list(cfg.model.pixel_std) == list(yaml_cfg.MODEL.PIXEL_STD)
    trained = augmented_size(cfg.dataloader.train.mapper.augmentations, (427, 640))
    backbone.bottom_up._padded_size(*trained)  # raises if the model cannot take it
    h, w = augmented_size(cfg.dataloader.test.mapper.augmentations, (427, 640))
    with shape_only(), torch.no_grad():
        images = net.preprocess_image([{"image": torch.zeros(3, h, w, device=device)}])
        maps = backbone(images.tensor)
    padded = images.tensor.shape[-2:]
    assert {n: tuple(t.shape) for n, t in maps.items()} == {
        n: (1, s.channels, ceil_div(padded[0], s.stride), ceil_div(padded[1], s.stride)) for n, s in shapes.items()
    }, f"{model}: LazyConfig seed at {h}x{w}"
