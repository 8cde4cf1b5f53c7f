#!/usr/bin/env python
"""Convert a timm checkpoint into a detectron2 checkpoint for a generated backbone.

    python tools/convert_timm_to_d2.py --config-file configs/resnet/resnet50_fpn.yaml \\
        --input resnet50.safetensors --output resnet50_d2.pth
    # without a config file: name the backbone
    python tools/convert_timm_to_d2.py --input r50.pth --output r50_d2.pth \\
        MODEL.BACKBONE.NAME build_resnet50_fpn_backbone

The input is the state dict of ``timm.create_model(NAME)`` (the classification model),
as ``.safetensors`` or a torch file read with ``torch.load(..., weights_only=True)``,
possibly nested under ``state_dict`` / ``model`` / ``module`` and possibly with the
``module.`` prefix of DistributedDataParallel. The output is what detectron2's
``DetectionCheckpointer`` loads as ``MODEL.WEIGHTS``::

    {"model": {"backbone.bottom_up.body.conv1.weight": ..., ...},
     "__author__": "d2timm", "matching_heuristics": False}

How the keys are mapped: the backbone the config describes is built on the meta device
(no memory, no weights), and so is the plain timm model. The generated backbone holds
timm's ``features_only`` model as ``body``; its parameter path inside the detector
(``backbone.bottom_up.body`` with an FPN, ``backbone.body`` without) is found by
walking the built modules, not assumed. timm's features wrappers keep the original
module names except that FeatureListNet flattens the children of top-level
``nn.Sequential`` modules (``stages.0`` becomes ``stages_0``); the table of those renames
is read from the meta-built timm model, exactly as timm builds it. Every key of the
features model must then come from one key of the timm model with the same shape;
checkpoint keys the features model does not hold (classifier, head, the stages after the
last output level, REMOVE_LAYERS) are dropped and listed. A fixed-size model built at
another size than its pretrained one (``IMG_SIZE``) gets the checkpoint's grid-sized
parameters resampled as ``PRETRAINED`` loading resamples them. A checkpoint that misses a
needed key, or holds one of the wrong shape, is an error naming the file and the first
bad keys.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

__all__ = [
    "CheckpointError",
    "ConversionResult",
    "convert",
    "find_timm_backbone",
    "key_mapping",
    "load_timm_state_dict",
    "main",
]

AUTHOR = "d2timm"
NESTED_KEYS = ("state_dict", "model", "module", "state_dict_ema", "model_ema")
SHOWN = 10


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read, or does not fit the model."""


def _first(keys: Iterable[str], n: int = SHOWN) -> str:
    keys = list(keys)
    return ", ".join(keys[:n]) + (f", ... ({len(keys)} in all)" if len(keys) > n else "")


# ------------------------------------------------------------------ reading


def load_timm_state_dict(path: os.PathLike | str) -> Dict[str, torch.Tensor]:
    """A timm state dict from ``.safetensors`` or a weights-only torch file, unwrapped."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            loaded = load_file(str(path), device="cpu")
        else:
            loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated, pickled objects, ...
        kind = "safetensors" if path.suffix == ".safetensors" else "weights-only torch"
        raise CheckpointError(f"{path}: cannot read it as a {kind} checkpoint: {type(exc).__name__}: {exc}") from exc
    state = loaded
    for _ in range(3):  # {"state_dict": {...}}, {"model": {...}}, {"model": {"module": ...}}
        if not isinstance(state, Mapping):
            break
        nested = [k for k in NESTED_KEYS if isinstance(state.get(k), Mapping)]
        if nested and not any(isinstance(v, torch.Tensor) for v in state.values()):
            state = state[nested[0]]
        else:
            break
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a state dict")
    bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: not a state dict of tensors; non-tensor entries: {_first(map(str, bad))}")
    if state and all(k.startswith("module.") for k in state):  # saved from DistributedDataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


# ------------------------------------------------------------------ mapping


def find_timm_backbone(module: torch.nn.Module) -> Tuple[str, torch.nn.Module]:
    """The generated backbone inside ``module`` (FPN or plain) and its path ("" or
    "bottom_up"). A generated backbone states TIMM_MODEL and holds timm's model as body."""
    for path, child in module.named_modules():
        if isinstance(getattr(type(child), "TIMM_MODEL", None), str) and isinstance(
            getattr(child, "body", None), torch.nn.Module
        ):
            return path, child
    raise CheckpointError(
        f"{type(module).__name__} holds no generated timm backbone (a module with TIMM_MODEL and body); "
        "MODEL.BACKBONE.NAME must name a generated backbone"
    )


def _flattened_names(model: torch.nn.Module) -> Dict[str, str]:
    """FeatureListNet's renames: ``<child>_<grandchild>`` for each top-level Sequential."""
    renames = {}
    for name, child in model.named_children():
        if isinstance(child, torch.nn.Sequential):
            for grandchild, _ in child.named_children():
                renames[f"{name}_{grandchild}"] = f"{name}.{grandchild}"
    return renames


def key_mapping(
    features: torch.nn.Module, model: torch.nn.Module
) -> Dict[str, str]:
    """{key in timm's model: key in its features model}, checked by shape.

    ``features`` is timm's ``features_only`` model, ``model`` the plain model (both may
    live on the meta device).
    """
    original = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    renames = _flattened_names(model)
    mapping: Dict[str, str] = {}
    unmatched: List[str] = []
    for key, value in features.state_dict().items():
        candidates = [key]
        head, _, rest = key.partition(".")
        if head in renames:  # FeatureListNet flattened a Sequential
            candidates.append(f"{renames[head]}.{rest}" if rest else renames[head])
        if head in ("model", "body") and rest:  # FeatureGetterNet keeps the model as .model, FeatureHookNet as .body
            candidates.append(rest)
        source = next((c for c in candidates if original.get(c) == tuple(value.shape)), None)
        if source is None:
            unmatched.append(key)
        elif source in mapping:
            raise CheckpointError(f"features keys {mapping[source]} and {key} both map to timm key {source}")
        else:
            mapping[source] = key
    if unmatched:
        raise CheckpointError(
            f"cannot match {len(unmatched)} keys of timm's features model to the plain model "
            f"(timm changed its wrapper?): {_first(unmatched)}"
        )
    return mapping


def _resampled(generated, state: Mapping[str, torch.Tensor], expected, source: str) -> Dict[str, torch.Tensor]:
    """A checkpoint saved at the model's pretrained size, its grid-sized parameters
    (``GRID_PARAMS``) resampled to a model built at another size, with the generated
    package's own ``runtime/resample.py``; unchanged for every other model."""
    import importlib

    grid = getattr(type(generated), "GRID_PARAMS", ())
    if not grid:
        return dict(state)
    package = type(generated).__module__.split(".")[0]
    resample = importlib.import_module(f"{package}.runtime.resample")
    what = f"timm's {generated.TIMM_MODEL} built at {generated.img_size}x{generated.img_size}"
    try:
        return resample.resample_state_dict(state, expected, grid, what)
    except ValueError as exc:
        raise CheckpointError(f"{source}: {exc}") from None


class ConversionResult(dict):
    """The detectron2 checkpoint, with what was converted and dropped as attributes."""

    converted: List[Tuple[str, str]]
    dropped: List[str]
    timm_model: str
    prefix: str


def convert(cfg, state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> ConversionResult:
    """Convert a timm state dict for the generated backbone that ``cfg`` describes.

    ``cfg.MODEL.BACKBONE.NAME`` must already be registered (see
    ``tools.train_net.ensure_backbone``). ``source`` names the file in errors.
    """
    import timm
    from detectron2.layers import ShapeSpec
    from detectron2.modeling import BACKBONE_REGISTRY

    builder = BACKBONE_REGISTRY.get(cfg.MODEL.BACKBONE.NAME)
    cfg = cfg.clone()
    cfg.defrost()
    cfg.MODEL.BACKBONE.CONFIG.PRETRAINED = None  # never load weights while mapping
    with torch.device("meta"):
        backbone = builder(cfg, ShapeSpec(channels=len(cfg.MODEL.PIXEL_MEAN)))
        path, generated = find_timm_backbone(backbone)
        kwargs = dict(getattr(type(generated), "CREATE_KWARGS", None) or {})
        if getattr(generated, "img_size", 0):  # a fixed-size model built at its detection size
            kwargs["img_size"] = generated.img_size
        model = timm.create_model(generated.TIMM_MODEL, pretrained=False, in_chans=len(cfg.MODEL.PIXEL_MEAN), **kwargs)
    mapping = key_mapping(generated.body, model)
    prefix = "backbone." + (f"{path}." if path else "") + "body."

    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    state = _resampled(generated, state, expected, source)
    unknown = [k for k in state if k not in expected]
    missing = [k for k in mapping if k not in state]
    wrong = [f"{k} {tuple(state[k].shape)} (model: {expected[k]})" for k in mapping if k in state and tuple(state[k].shape) != expected[k]]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} keys the backbone needs: {_first(missing)}")
    if wrong:
        problems.append(f"{len(wrong)} keys of the wrong shape: {_first(wrong, 5)}")
    if unknown:
        problems.append(f"{len(unknown)} keys that timm's {generated.TIMM_MODEL} does not have: {_first(unknown)}")
    if problems:
        raise CheckpointError(
            f"{source} does not fit timm's {generated.TIMM_MODEL} ({cfg.MODEL.BACKBONE.NAME}): " + "; ".join(problems)
        )
    weights = {prefix + mapping[k]: state[k].detach().clone().contiguous() for k in mapping}
    result = ConversionResult(model=weights, __author__=AUTHOR, matching_heuristics=False)
    result.converted = [(k, prefix + mapping[k]) for k in mapping]
    result.dropped = [k for k in state if k not in mapping]
    result.timm_model = generated.TIMM_MODEL
    result.prefix = prefix
    return result


# ------------------------------------------------------------------ command line


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1].split("\n\nHow the keys")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config-file", default="", metavar="FILE", help="the model's config (its backbone)")
    parser.add_argument("--input", "-i", required=True, help="timm checkpoint (.pth, .pt, .bin, .safetensors)")
    parser.add_argument("--output", "-o", required=True, help="detectron2 checkpoint to write (.pth)")
    parser.add_argument("--package", default="generated", help="generated package providing the backbone")
    parser.add_argument("--package-root", default=None, metavar="DIR", help="directory holding --package")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides, KEY VALUE pairs")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    from tools import train_net

    args = argument_parser().parse_args(argv)
    try:
        cfg = train_net.build_config(args)
        train_net.ensure_backbone(cfg, args.package, args.package_root)
        state = load_timm_state_dict(args.input)
        result = convert(cfg, state, source=args.input)
    except (CheckpointError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    torch.save(dict(result), output)
    print(
        f"{args.input}: {len(result.converted)} tensors of timm's {result.timm_model} -> {output} "
        f"(keys {result.prefix}*)"
    )
    if result.dropped:
        print(f"dropped {len(result.dropped)} keys the backbone does not use: {_first(result.dropped)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
