"""Pretrained fidelity: a timm classifier's weights land where the classifier had them.

For one model per family (the smallest, by the channels it declares) and one model per
special path of creation or loading (each size mode, fixed-size models moved or not,
NHWC maps, each features wrapper, padded inputs, maps a row off), on real tensors:

- a classifier checkpoint the test writes at the pretrained size (random weights,
  perturbed so that no layer is an identity) loads through ``PRETRAINED``: every
  parameter and buffer of the backbone's timm model holds the checkpoint's value (none
  missing), and only keys of the classifier's head and of layers after the last level
  are left out (none unexpected);
- the backbone's outputs equal the classifier's own intermediate features on the same
  input (``forward_intermediates`` for the models timm wraps that way, forward hooks on
  the declared modules for the others), at every declared level;
- the same checkpoint converted by ``tools/convert_timm_to_d2.py`` and loaded by
  detectron2's ``DetectionCheckpointer`` gives the same outputs.

Fixed-size models are built at their pretrained side here (``IMG_SIZE``), so that no
parameter is resampled: tests/test_detection_size.py covers the resampling. Models above
:data:`DEFAULT_MAX_PARAMS` parameters are marked slow (`make test-all` runs them).
"""

from __future__ import annotations

import functools

import pytest
import torch

from tests.helpers import ROOT, build_backbone, classifier_key, generated_class, manifest_of, model_config


#: Models above this many parameters run in the slow suite (`make test-all`): a
#: classifier, the backbone and a converted copy of each are built on the CPU.
DEFAULT_MAX_PARAMS = 30_000_000


def _size_proxy(spec) -> tuple:
    return spec["facts"]["params"], sum(f["channels"] for f in spec["features"])


def _path_of(spec) -> tuple:
    """What decides how a model is created and loaded."""
    facts = spec["facts"]
    fixed = "moved" if facts["img_size"] else ("stuck" if facts["fixed_input_size"] else "any")
    return (facts["feature_class"], facts["layout"], tuple(map(tuple, facts["create_kwargs"])), fixed,
            bool(facts["input_pad"]), bool(facts["size_slack"]))  # fmt: skip


@functools.lru_cache(maxsize=1)
def fidelity_sample():
    """(model, family): the smallest model of each family, and of each creation path."""
    models = manifest_of(ROOT / "generated")["models"]
    chosen = {}
    for key_of in (lambda name, spec: spec["facts"]["family"], lambda name, spec: _path_of(spec)):
        best = {}
        for name, spec in sorted(models.items()):
            key = key_of(name, spec)
            if key not in best or _size_proxy(spec) < _size_proxy(models[best[key]]):
                best[key] = name
        chosen.update({name: models[name]["facts"]["family"] for name in best.values()})
    return sorted(chosen.items())


SAMPLE = fidelity_sample()


def _params(model: str) -> int:
    return manifest_of(ROOT / "generated")["models"][model]["facts"]["params"]


CASES = [
    pytest.param(model, family, id=model, marks=[pytest.mark.slow] if _params(model) > DEFAULT_MAX_PARAMS else [])
    for model, family in SAMPLE
]


def test_the_sample_covers_every_family_and_path():
    models = manifest_of(ROOT / "generated")["models"]
    families = {spec["facts"]["family"] for spec in models.values()}
    assert {family for _, family in SAMPLE} == families
    assert {_path_of(models[m]) for m, _ in SAMPLE} == {_path_of(spec) for spec in models.values()}


def _classifier(model: str, cls):
    import timm

    kwargs = dict(cls.CREATE_KWARGS)
    if cls.IMG_SIZE_MULTIPLE:
        kwargs["img_size"] = cls.INPUT_SIZE[0]
    torch.manual_seed(0)
    classifier = timm.create_model(model, pretrained=False, **kwargs).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # no zero-initialised layer (layer scale, last BN) may hide a misplaced weight
        for name, tensor in classifier.state_dict().items():
            if tensor.is_floating_point():
                noise = 0.02 * torch.randn(tensor.shape, generator=generator)
                tensor.copy_(tensor.abs() + noise.abs() + 0.5 if name.endswith("running_var") else tensor + noise)
    return classifier


def _first(output):
    """A module's output as timm's features wrappers take it: the first of a tuple or list."""
    return output[0] if isinstance(output, (tuple, list)) else output


def _hooked_outputs(classifier, backbone, indices, x):
    """The classifier's outputs of the declared modules, hooked as the features model
    hooks them (its input where timm's wrapper takes a module's input)."""
    info = classifier.feature_info
    info = info if isinstance(info, list) else info.info
    modules = dict(backbone.body.named_modules())
    captured, handles = {}, []

    def keep(name, value) -> None:  # a hook that returns nothing leaves the model's output alone
        captured.setdefault(name, _first(value))

    for index in indices:
        name = info[index]["module"]
        wrapped = modules.get(f"body.{name}") or modules.get(name)
        pre = wrapped is not None and bool(wrapped._forward_pre_hooks) and not wrapped._forward_hooks
        module = classifier.get_submodule(name)
        if pre:
            handles.append(module.register_forward_pre_hook(lambda m, a, k=name: keep(k, a)))
        else:
            handles.append(module.register_forward_hook(lambda m, a, out, k=name: keep(k, out)))
    try:
        classifier(x)
    finally:
        for handle in handles:
            handle.remove()
    return [captured[info[index]["module"]] for index in indices]


def _reference(classifier, cls, backbone, x: torch.Tensor, checkpoint_path):
    """The classifier's own features at the backbone's levels, on the input its timm
    model sees: ``forward_intermediates`` where timm wraps the model with it, hooks on
    the declared modules otherwise. Where timm's features model is a module of its own
    (hrnet, mvitv2: no path into the classifier), timm's features model loaded from the
    same checkpoint is the reference."""
    import timm

    seen = []
    hook = backbone.body.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    with torch.no_grad():
        ours = backbone(x)
    hook.remove()
    (body_input,) = seen
    indices = [feature.index for _, feature in backbone._levels]
    with torch.no_grad():
        if type(backbone.body).__name__ == "FeatureGetterNet":
            maps = classifier.forward_intermediates(body_input, indices=indices, intermediates_only=True)
        elif not all(feature.path for _, feature in backbone._levels):
            features = timm.create_model(cls.TIMM_MODEL, features_only=True, out_indices=indices, **dict(cls.CREATE_KWARGS),
                                         pretrained=True, pretrained_cfg_overlay=dict(file=str(checkpoint_path))).eval()  # fmt: skip
            maps = list(features(body_input))
        else:
            maps = _hooked_outputs(classifier, backbone, indices, body_input)
    if cls.LAYOUT == "NHWC":
        maps = [m.permute(0, 3, 1, 2) for m in maps]
    return ours, maps


def _assert_same_features(ours, reference, model):
    for (name, got), expected in zip(ours.items(), reference):
        h, w = min(got.shape[-2], expected.shape[-2]), min(got.shape[-1], expected.shape[-1])
        assert got.shape[:2] == expected.shape[:2], (model, name)
        torch.testing.assert_close(got[..., :h, :w], expected[..., :h, :w], rtol=1e-4, atol=1e-4, msg=f"{model} {name}")


def test_most_of_the_sample_runs_by_default():
    assert sum(_params(m) <= DEFAULT_MAX_PARAMS for m, _ in SAMPLE) >= 0.8 * len(SAMPLE)


@pytest.mark.parametrize("model, family", CASES)
def test_pretrained_weights_land_where_timm_had_them(model, family, tmp_path):
    from detectron2.checkpoint import DetectionCheckpointer

    from tools import convert_timm_to_d2

    cls = generated_class(model)
    classifier = _classifier(model, cls)
    checkpoint = {k: v.clone() for k, v in classifier.state_dict().items()}
    path = tmp_path / f"{model}.pth"
    torch.save(checkpoint, path)
    overrides = ["MODEL.BACKBONE.CONFIG.IMG_SIZE", str(cls.INPUT_SIZE[0])] if cls.IMG_SIZE_MULTIPLE else []
    cfg = model_config(model, family, fpn=False, overrides=overrides + ["MODEL.BACKBONE.CONFIG.PRETRAINED", str(path)])
    backbone = build_backbone(cfg).eval()

    # every tensor of the backbone's timm model is the checkpoint's: nothing missing, and no
    # checkpoint key that names one of its tensors was left unloaded
    loaded = backbone.body.state_dict()
    for key, value in loaded.items():
        source = classifier_key(key, checkpoint)
        torch.testing.assert_close(value, checkpoint[source], rtol=0, atol=0, msg=f"{model}: {key} <- {source}")

    height, width = cls.INPUT_SIZE
    x = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(2))
    ours, reference = _reference(classifier, cls, backbone, x, path)
    _assert_same_features(ours, reference, model)

    # the same checkpoint converted to detectron2's format, loaded by its checkpointer
    converted = tmp_path / f"{model}_d2.pth"
    config_file = tmp_path / "config.yaml"
    plain = model_config(model, family, fpn=False, overrides=overrides)
    config_file.write_text(plain.dump())
    assert convert_timm_to_d2.main(["--config-file", str(config_file), "--input", str(path), "--output", str(converted)]) == 0
    holder = torch.nn.Module()
    holder.backbone = build_backbone(plain).eval()
    DetectionCheckpointer(holder).load(str(converted))
    with torch.no_grad():
        again = holder.backbone(x)
    for name in ours:
        torch.testing.assert_close(again[name], ours[name], rtol=0, atol=0, msg=f"{model} {name} (converted)")
