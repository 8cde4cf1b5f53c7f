"""Optimizer facts (runtime/optim.py): layer-wise lr decay from timm's own layering, and
timm's weight-decay exemptions, through the paths users take.

- Every family (its smallest model, on the meta device): the factors the backbone gives
  are timm's own layer-decay scales (``param_groups_layer_decay`` on the classifier timm
  builds with the same arguments) up to one constant, so the layers are timm's; models
  timm gives no layering say so.
- On ViTs of two depths, inside detectron2's Mask R-CNN built from the FPN seed, the
  factors are ViTDet's rule for that depth (and, where detectron2 main is installed,
  ``get_vit_lr_decay_rate`` itself).
- ``tools/train_net.py``'s optimizer for a YAML config: ``SOLVER.BACKBONE_LR_DECAY`` and the
  exemptions, and detectron2's own groups where both are off.
"""

from __future__ import annotations

import math

import pytest
import torch

from generator.compat import skip_meta_init
from tests.helpers import ROOT, build_meta_model, classifier_key, generated_class, manifest_of, model_config
from tools import train_net
from tools.dev import sweep

DECAY = 0.5
FAMILY_SAMPLE = sweep.family_sample(sweep.catalog(manifest_of(ROOT / "generated")))


def _timm_classifier(cls):
    import timm

    kwargs = dict(cls.CREATE_KWARGS, **({"img_size": cls.IMG_SIZE} if cls.IMG_SIZE else {}))
    with torch.device("meta"):
        return timm.create_model(cls.TIMM_MODEL, pretrained=False, **kwargs)


def _meta_backbone(cls):
    with skip_meta_init(), torch.device("meta"):
        return cls(pretrained=False)


@pytest.mark.parametrize("model, family", [(m.name, m.family) for m in FAMILY_SAMPLE], ids=[m.name for m in FAMILY_SAMPLE])
def test_layers_are_timms_own_layering(model, family):
    from timm.optim import param_groups_layer_decay

    cls = generated_class(model)
    classifier = _timm_classifier(cls)
    if not cls.LAYERS:
        assert not hasattr(classifier, "group_matcher") and "group_matcher" in cls.LAYERS_REASON
        with pytest.raises(ValueError, match=f"not possible for {model}: timm gives the model no group_matcher"):
            cls.lr_factor_func(DECAY)
        return
    names = {id(p): n for n, p in classifier.named_parameters()}
    timm_scale = {names[id(p)]: g["lr_scale"] for g in param_groups_layer_decay(classifier, layer_decay=DECAY) for p in g["params"]}
    factor = cls.lr_factor_func(DECAY)
    body = _meta_backbone(cls).body
    ratios = {timm_scale[classifier_key(n, timm_scale)] / factor(f"backbone.body.{n}") for n, _ in body.named_parameters()}
    assert max(ratios) == pytest.approx(min(ratios), rel=1e-9), f"{model}: timm's scales / ours = {sorted(ratios)}"
    exponents = {round(math.log(factor(f"backbone.body.{n}"), DECAY)) for n, _ in body.named_parameters()}
    assert exponents == set(range(1, cls.NUM_LAYERS + 1)), f"{model}: every layer has parameters, stem {cls.NUM_LAYERS}, last 1"


@pytest.mark.parametrize("model, family", [(m.name, m.family) for m in FAMILY_SAMPLE], ids=[m.name for m in FAMILY_SAMPLE])
def test_no_weight_decay_is_timms(model, family):
    import fnmatch

    from generated.runtime.optim import no_weight_decay

    cls = generated_class(model)
    classifier = _timm_classifier(cls)
    patterns = classifier.no_weight_decay() if hasattr(classifier, "no_weight_decay") else set()
    classifier_names = [n for n, _ in classifier.named_parameters()]
    for name, _ in _meta_backbone(cls).body.named_parameters():
        exempt = any(fnmatch.fnmatchcase(classifier_key(name, classifier_names), p) for p in patterns)
        assert no_weight_decay(cls, name) == exempt, name


VITS = [("vit_tiny_patch16_224", "vision_transformer"), ("vit_so150m_patch16_reg4_gap_256", "vision_transformer")]


def _vitdet_rule(name: str, depth: int, decay: float) -> float:
    """ViTDet's layer-wise decay for depth ``depth`` (``get_vit_lr_decay_rate``): the patch
    and position embeddings (and, in timm's ViTs, the class and register tokens beside
    them) decay ** (depth + 1), block i decay ** (depth - i), everything else 1."""
    if ".body." not in name:
        return 1.0
    if any(part in name for part in (".pos_embed", ".patch_embed", ".cls_token", ".reg_token")):
        return decay ** (depth + 1)
    if ".blocks." in name:
        return decay ** (depth - int(name.split(".blocks.")[1].split(".")[0]))
    return 1.0


def _mask_rcnn(model, family):
    return build_meta_model(model_config(model, family))


@pytest.mark.parametrize("model, family", VITS, ids=[m for m, _ in VITS])
def test_vit_factors_are_vitdets_inside_mask_rcnn(model, family):
    net = _mask_rcnn(model, family)
    cls = type(net.backbone.bottom_up)
    depth = len(_timm_classifier(cls).blocks)
    assert cls.NUM_LAYERS == depth + 1
    factor = cls.lr_factor_func(0.7)
    names = [n for n, _ in net.named_parameters()]
    assert sum(".blocks." in n for n in names) > depth
    for name in names:
        assert factor(name) == pytest.approx(_vitdet_rule(name, depth, 0.7), rel=1e-12), name


@pytest.mark.parametrize("model, family", VITS, ids=[m for m, _ in VITS])
def test_vit_factors_equal_detectron2_mains_get_vit_lr_decay_rate(model, family):
    vit = pytest.importorskip(
        "detectron2.modeling.backbone.vit",
        reason="detectron2 v0.6 has no ViTDet (get_vit_lr_decay_rate); install detectron2 main (README: D2_SOURCE)",
    )
    net = _mask_rcnn(model, family)
    cls = type(net.backbone.bottom_up)
    depth = len(_timm_classifier(cls).blocks)
    factor = cls.lr_factor_func(0.7)
    for name, _ in net.named_parameters():
        if ".cls_token" in name or ".reg_token" in name:
            continue  # detectron2's ViT has no class or register tokens
        expected = vit.get_vit_lr_decay_rate(name, lr_decay_rate=0.7, num_layers=depth)
        assert factor(name) == pytest.approx(expected, rel=1e-12), name


# ------------------------------------------------------------------ tools/train_net.py


def _optimizer(model, family, *overrides):
    cfg = model_config(model, family, overrides=["MODEL.DEVICE", "cpu", "SOLVER.BASE_LR", "0.02", "SOLVER.WEIGHT_DECAY", "0.1", *overrides])
    net = build_meta_model(cfg, device="cpu")
    return net, train_net.Trainer.build_optimizer(cfg, net)


def _per_parameter(net, optimizer):
    names = {id(p): n for n, p in net.named_parameters()}
    return {names[id(p)]: (g["lr"], g["weight_decay"]) for g in optimizer.param_groups for p in g["params"]}


def test_train_net_applies_backbone_lr_decay_and_timms_exemptions():
    from detectron2.solver import build_optimizer

    net, optimizer = _optimizer("vit_tiny_patch16_224", "vision_transformer", "SOLVER.BACKBONE_LR_DECAY", "0.7")
    cfg = model_config("vit_tiny_patch16_224", "vision_transformer", overrides=["SOLVER.BASE_LR", "0.02", "SOLVER.WEIGHT_DECAY", "0.1"])
    detectron2s = _per_parameter(net, build_optimizer(cfg, net))
    got = _per_parameter(net, optimizer)
    assert set(got) == set(detectron2s) == {n for n, p in net.named_parameters() if p.requires_grad}
    exempt = {n for n in got if n.endswith((".body.model.pos_embed", ".body.model.cls_token"))}
    assert len(exempt) == 2
    for name, (lr, weight_decay) in got.items():
        base_lr, base_decay = detectron2s[name]
        assert lr == pytest.approx(base_lr * _vitdet_rule(name, 12, 0.7), rel=1e-9), name
        assert weight_decay == (0.0 if name in exempt else base_decay), name
    assert isinstance(optimizer, torch.optim.SGD)


def test_train_net_without_decay_or_exemptions_gives_detectron2s_own_groups():
    from detectron2.solver import build_optimizer

    net, optimizer = _optimizer("resnet18", "resnet")
    cfg = model_config("resnet18", "resnet", overrides=["SOLVER.BASE_LR", "0.02", "SOLVER.WEIGHT_DECAY", "0.1"])
    assert _per_parameter(net, optimizer) == _per_parameter(net, build_optimizer(cfg, net))


@pytest.mark.parametrize("value", ["0.0", "1.5"])
def test_a_bad_decay_names_the_valid_range(value):
    with pytest.raises(ValueError, match=rf"{value} is not valid; valid: a number in \(0, 1\]"):
        _optimizer("resnet18", "resnet", "SOLVER.BACKBONE_LR_DECAY", value)


def test_decay_on_a_model_without_layering_says_why():
    with pytest.raises(ValueError, match="not possible for pit_ti_224: timm gives the model no group_matcher"):
        _optimizer("pit_ti_224", "pit", "SOLVER.BACKBONE_LR_DECAY", "0.7")


def test_decay_on_detectron2s_own_backbone_is_refused():
    from detectron2 import model_zoo
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    import generated

    cfg = get_cfg()
    generated.add_timm_config(cfg)
    cfg.merge_from_file(model_zoo.get_config_file("COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml"))
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", "SOLVER.BACKBONE_LR_DECAY", "0.7"])
    with pytest.raises(ValueError, match="BACKBONE_LR_DECAY: 0.7 needs a generated backbone"):
        train_net.Trainer.build_optimizer(cfg, build_model(cfg))


# ------------------------------------------------------ the ViTDet recipe seed (mask_rcnn_vitdet)

#: A ViT of ViT-B's depth recipe (any input size: no checkpointing) and a single-scale model
#: built at one size (checkpointing on), each with drop path and timm's layering.
RECIPE_CASES = [("vit_tiny_patch16_224", "vision_transformer", False), ("beit_base_patch16_224", "beit", True)]


def _recipe_seed(tmp_path, model):
    """The recipe seed as `d2timm-gen seed MODEL --task mask_rcnn_vitdet` renders it, beside
    the Mask R-CNN seed it imports, loaded as LazyConfig loads it."""
    from generator.render import render_seeds, render_task_seed
    from generator.spec import ModelFacts, make_spec
    from tests.helpers import load_lazy_config

    spec = make_spec(ModelFacts.from_dict(manifest_of(ROOT / "generated")["models"][model]["facts"]))
    seeds = {**render_seeds(spec, "generated"), **render_task_seed(spec, "mask_rcnn_vitdet", "py", "generated")}
    for path, text in seeds.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    return load_lazy_config(tmp_path / spec.family / f"{model}_mask_rcnn_vitdet.py")


@pytest.mark.parametrize("model, family, checkpointed", RECIPE_CASES, ids=[m for m, _, _ in RECIPE_CASES])
def test_the_recipe_seed_trains_as_vitdet_does(tmp_path, model, family, checkpointed):
    """ViTDet's ViT-B recipe through the seed, as tools/train_net.py instantiates it: AdamW
    at 1e-4 with weight decay 0.1, each parameter's lr by ViTDet's rule for 12 blocks and
    0.7, no weight decay for norms and for what timm's no_weight_decay() names, drop path
    0.1 in the backbone, checkpointing where the seed says, timm's weights."""
    from detectron2.config import instantiate
    from detectron2.solver.build import get_default_optimizer_params
    from timm.layers import DropPath

    cfg = _recipe_seed(tmp_path, model)
    assert cfg.model.backbone.bottom_up.pretrained is True
    cfg.model.backbone.bottom_up.pretrained = False  # no hub on this machine
    with skip_meta_init(), torch.device("meta"):
        net = instantiate(cfg.model)
    cfg.optimizer.params.model = net
    optimizer = instantiate(cfg.optimizer)
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["betas"] == (0.9, 0.999)

    cls = type(net.backbone.bottom_up)
    classifier = _timm_classifier(cls)
    depth = len(classifier.blocks)
    assert depth == 12
    exempt = {f"backbone.bottom_up.body.model.{n}" for n in classifier.no_weight_decay()}
    exempt &= {n for n, _ in net.named_parameters()}
    assert exempt, "timm exempts the position embedding or the class token"
    groups = get_default_optimizer_params(net, base_lr=1e-4, weight_decay=0.1, weight_decay_norm=0.0)
    detectron2s = _per_parameter(net, torch.optim.AdamW(groups))
    got = _per_parameter(net, optimizer)
    assert set(got) == set(detectron2s)
    for name, (lr, weight_decay) in got.items():
        assert lr == pytest.approx(1e-4 * _vitdet_rule(name, depth, 0.7), rel=1e-9), name
        assert weight_decay == (0.0 if name in exempt else detectron2s[name][1]), name

    rates = [m.drop_prob for m in net.backbone.bottom_up.modules() if isinstance(m, DropPath)]
    assert rates and max(rates) == pytest.approx(0.1)  # timm: linear from 0 at the first block
    assert (net.backbone.bottom_up.checkpointed_blocks > 0) == checkpointed

    schedule = instantiate(cfg.lr_multiplier)
    assert schedule(0.0) == pytest.approx(0.001) and schedule(0.5) == 1.0 and schedule(0.99) == pytest.approx(0.01)


def test_the_recipe_follows_vitdets_depths():
    from generator.spec import ModelFacts, make_spec
    from generator.tasks import training_recipe

    models = manifest_of(ROOT / "generated")["models"]
    recipe = {name: training_recipe(make_spec(ModelFacts.from_dict(models[name]["facts"]))) for name in
              ("vit_base_patch16_224", "vit_large_patch16_224", "vit_huge_patch14_224", "poolformer_s12")}  # fmt: skip
    assert [(r.lr_decay, r.drop_path_rate) for r in recipe.values()] == [(0.7, 0.1), (0.8, 0.4), (0.9, 0.5), (0.7, 0.1)]
