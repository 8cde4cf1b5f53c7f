"""Rendering hand-written specs: golden files, plus the key facts asserted one by one.

The goldens (tests/golden/expected) catch any change of the rendered text; after a
deliberate template change run ``make goldens`` and review the diff. The explicit
assertions below state the facts that matter (feature names, FPN levels, pixel
statistics times 255, timm module names) with values worked out by hand from the specs
in tests/golden/specs, so a golden regenerated with a wrong value still fails here.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import string

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.formatting import FormatError, format_file
from generator.names import UnsafeNameError
from generator.render import RUNTIME_MODULES, py_literal, render_model, render_package, render_seeds, yaml_literal
from generator.spec import make_spec
from tests.golden import regenerate
from tests.golden.regenerate import PACKAGE, SPECS
from tests.helpers import golden_facts

EXPECTED_PATHS = sorted(regenerate.expected_on_disk())


@pytest.fixture(scope="module")
def rendered():
    return regenerate.render_golden()


@pytest.fixture(scope="module")
def expected():
    return regenerate.expected_on_disk()


# ------------------------------------------------------------------------ the goldens


def test_golden_file_set(rendered, expected):
    missing, extra = sorted(set(rendered) - set(expected)), sorted(set(expected) - set(rendered))
    assert not missing and not extra, f"run `make goldens` and review: new {missing}, gone {extra}"


@pytest.mark.parametrize("path", EXPECTED_PATHS)
def test_golden(path, rendered, expected):
    assert (
        rendered.get(path) == expected[path]
    ), f"{path} differs from its golden: run `make goldens` and review the diff"


def test_render_model_is_what_the_package_holds():
    spec = make_spec(golden_facts("resnet_like"))
    package = render_package(PACKAGE, [spec])
    assert package["resnet/toy_resnet.py"] == render_model(spec)
    assert set(package) == {"__init__.py", "resnet/__init__.py", "resnet/toy_resnet.py"} | {
        f"runtime/{m}.py" for m in RUNTIME_MODULES
    }


def test_regenerate_writes_checks_and_prunes(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(regenerate, "EXPECTED", tmp_path)
    (tmp_path / "stale" / "old.py").parent.mkdir()
    (tmp_path / "stale" / "old.py").write_text("x = 1\n")
    assert regenerate.main([]) == 0
    assert regenerate.expected_on_disk() == regenerate.render_golden()
    assert not (tmp_path / "stale").exists()
    assert regenerate.main(["--check"]) == 0
    (tmp_path / PACKAGE / "resnet" / "toy_resnet.py").write_text("# hand edit\n")
    assert regenerate.main(["--check"]) == 1
    assert f"out of date: tests/golden/expected/{PACKAGE}/resnet/toy_resnet.py" in capsys.readouterr().out


# --------------------------------------------------------------------- key facts: YAML

PIXEL_IMAGENET = ([123.675, 116.28, 103.53], [58.395, 57.12, 57.375])  # 0.485*255, ...; 0.229*255, ...
PIXEL_INCEPTION = ([127.5] * 3, [127.5] * 3)  # 0.5*255
PIXEL_CLIP = ([122.7709, 116.746, 104.0937], [68.5005, 66.6322, 70.3232])  # 0.48145466*255 = 122.77094 ...

#: Worked out by hand from tests/golden/specs/*.json.
YAML_FACTS = {
    "resnet/toy_resnet": dict(
        modules=["layer1", "layer2", "layer3", "layer4"],
        names=["res2", "res3", "res4", "res5"],
        strides=[4, 8, 16, 32],
        channels=[256, 512, 1024, 2048],
        fpn=["res2", "res3", "res4", "res5"],
        rpn=["p2", "p3", "p4", "p5", "p6"],
        anchors=[[32], [64], [128], [256], [512]],
        pixel=PIXEL_IMAGENET,
        fixed=False,
    ),
    "swin_transformer/toy_swin": dict(
        modules=["layers.0", "layers.1", "layers.2", "layers.3"],
        names=["res2", "res3", "res4", "res5"],
        strides=[4, 8, 16, 32],
        channels=[96, 192, 384, 768],
        fpn=["res2", "res3", "res4", "res5"],
        rpn=["p2", "p3", "p4", "p5", "p6"],
        anchors=[[32], [64], [128], [256], [512]],
        pixel=PIXEL_IMAGENET,
        fixed=False,
    ),
    "levit/toy_levit": dict(
        modules=["stages.0", "stages.1", "stages.2"],
        names=["res4", "res5", "res6"],
        strides=[16, 32, 64],
        channels=[128, 256, 384],
        fpn=["res4", "res5", "res6"],
        rpn=["p4", "p5", "p6", "p7"],  # the max-pooled level sits on top of p6, not p5
        anchors=[[128], [256], [512], [1024]],
        pixel=PIXEL_INCEPTION,
        fixed=False,
    ),
    "vision_transformer/toy_vit": dict(
        modules=["blocks.11"],  # single-scale: the last block, as in ViTDet
        names=["stage11"],
        strides=[16],
        channels=[768],
        fpn=["stage11"],
        rpn=["p2", "p3", "p4", "p5", "p6"],  # the simple feature pyramid
        anchors=[[32], [64], [128], [256], [512]],
        pixel=PIXEL_CLIP,
        fixed=False,
    ),
    "pit/toy_pit": dict(
        modules=["transformers.0", "transformers.1", "transformers.2"],
        names=["res3", "res4", "res5"],
        strides=[8, 16, 32],
        channels=[64, 128, 256],
        fpn=["res3", "res4", "res5"],
        rpn=["p3", "p4", "p5", "p6"],
        anchors=[[64], [128], [256], [512]],
        pixel=PIXEL_IMAGENET,
        fixed=True,
        img_size=1024,  # built at ViTDet's side, a multiple of its step 32
        limit=1024,
    ),
    "crossvit/toy_crossvit": dict(
        modules=["blocks.2"],
        names=["stage2"],
        strides=[12],
        channels=[96],
        fpn=["stage2"],
        rpn=["p2", "p3", "p4", "p5", "p6"],
        anchors=[[32], [64], [128], [256], [512]],
        pixel=PIXEL_IMAGENET,
        fixed=True,
        img_size=1200,  # the first multiple of 240 at or above 1024
        limit=1184,  # the largest multiple of 32 (the simple pyramid's) that fits in 1200
    ),
    "mlp_mixer/toy_mixer": dict(
        modules=["blocks.11"],
        names=["stage11"],
        strides=[16],
        channels=[768],
        fpn=["stage11"],
        rpn=["p2", "p3", "p4", "p5", "p6"],
        anchors=[[32], [64], [128], [256], [512]],
        pixel=PIXEL_CLIP,
        fixed=True,
        limit=224,  # cannot move: its pretrained size, under the base's training sides
        train=[224],
    ),
}


def _seed(rendered, stem: str, fpn: bool) -> dict:
    return yaml.safe_load(rendered[f"configs/{stem}{'_fpn' if fpn else ''}.yaml"])


@pytest.mark.parametrize("stem", sorted(YAML_FACTS))
@pytest.mark.parametrize("fpn", [True, False], ids=["fpn", "plain"])
def test_seed_backbone_keys(rendered, stem, fpn):
    facts, seed = YAML_FACTS[stem], _seed(rendered, stem, fpn)
    model = stem.split("/")[1]
    assert seed["_BASE_"] == ("../Base-RCNN-FPN-timm.yaml" if fpn else "../Base-RCNN-timm.yaml")
    backbone = seed["MODEL"]["BACKBONE"]
    assert backbone["NAME"] == (f"build_{model}_fpn_backbone" if fpn else f"build_{model}_backbone")
    config = backbone["CONFIG"]
    assert config["OUT_FEATURES"] == facts["modules"]  # timm module names
    assert config["REMAPS"] == facts["names"]
    assert config["STRIDES"] == facts["strides"]
    assert config["CHANNELS"] == facts["channels"]
    assert config["REMOVE_LAYERS"] == []
    assert seed["MODEL"]["PIXEL_MEAN"] == facts["pixel"][0]
    assert seed["MODEL"]["PIXEL_STD"] == facts["pixel"][1]
    if "img_size" in facts:
        assert config["IMG_SIZE"] == facts["img_size"]
    else:
        assert "IMG_SIZE" not in config
    expected_input = {"FORMAT": "RGB", "FIXED_INPUT_SIZE": facts["fixed"]}
    if facts["fixed"]:  # the square the model is built at, as ViTDet resizes and pads
        limit = facts["limit"]
        expected_input.update(MAX_SIZE_TRAIN=limit, MIN_SIZE_TEST=limit, MAX_SIZE_TEST=limit)
        if "train" in facts:
            expected_input.update(MIN_SIZE_TRAIN=facts["train"])
    else:  # detectron2's COCO recipe (training sides 640..800 from the base config)
        expected_input.update(MAX_SIZE_TRAIN=1333, MIN_SIZE_TEST=800, MAX_SIZE_TEST=1333)
    assert seed["INPUT"] == expected_input


@pytest.mark.parametrize("stem", sorted(YAML_FACTS))
def test_fpn_seed_heads(rendered, stem):
    facts, model = YAML_FACTS[stem], _seed(rendered, stem, True)["MODEL"]
    assert model["FPN"]["IN_FEATURES"] == facts["fpn"]
    assert model["RPN"]["IN_FEATURES"] == facts["rpn"]
    assert model["ROI_HEADS"]["IN_FEATURES"] == facts["rpn"][:-1]
    assert model["ANCHOR_GENERATOR"]["SIZES"] == facts["anchors"]


@pytest.mark.parametrize("stem", sorted(YAML_FACTS))
def test_plain_seed_heads_read_the_coarsest_output(rendered, stem):
    model = _seed(rendered, stem, False)["MODEL"]
    last = YAML_FACTS[stem]["names"][-1]
    assert model["RPN"]["IN_FEATURES"] == [last] and model["ROI_HEADS"]["IN_FEATURES"] == [last]
    assert "FPN" not in model


def _golden_runtime_config():
    """The golden package's own runtime/config.py (it needs detectron2 only)."""
    path = regenerate.EXPECTED / PACKAGE / "runtime" / "config.py"
    spec = importlib.util.spec_from_file_location("golden_runtime_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "path", [p for p in EXPECTED_PATHS if p.startswith("configs/") and "/" in p[8:] and p.endswith(".yaml")]
)
def test_seeds_load_into_a_detectron2_config(path):
    """Every key of every seed exists in detectron2's config (plus the generated keys)."""
    from detectron2.config import get_cfg

    cfg = get_cfg()
    _golden_runtime_config().add_timm_config(cfg)
    cfg.merge_from_file(str(regenerate.EXPECTED / path))
    assert cfg.INPUT.FORMAT == "RGB"
    assert cfg.MODEL.BACKBONE.NAME.startswith("build_toy_")
    # detectron2's caffe BGR defaults are gone
    assert list(cfg.MODEL.PIXEL_MEAN) != [103.53, 116.28, 123.675]


# ------------------------------------------------------------- key facts: LazyConfig seeds


@pytest.fixture
def golden_lazy(monkeypatch):
    """Load a golden LazyConfig seed (its imports resolve to tests/golden/expected/golden_pkg)."""
    from detectron2.config import LazyConfig

    monkeypatch.syspath_prepend(str(regenerate.EXPECTED))
    return lambda stem: LazyConfig.load(str(regenerate.EXPECTED / "configs" / f"{stem}_mask_rcnn.py"))


def _target(node) -> str:
    target = node._target_
    return target if isinstance(target, str) else f"{target.__module__}.{target.__qualname__}"


@pytest.mark.parametrize(
    "stem, neck, levels, bottom_up, image_size",
    [
        # worked out by hand: FPN over res2..res5, the base heads p2..p6; LSJ at the recipe's 1024
        ("resnet/toy_resnet", "TimmFPN", ["p2", "p3", "p4", "p5", "p6"],
         dict(out_features=["res2", "res3", "res4", "res5"]), 1024),
        # strides 16, 32, 64: the heads read p4..p7, the pooled level on p6
        ("levit/toy_levit", "TimmFPN", ["p4", "p5", "p6", "p7"], dict(out_features=["res4", "res5", "res6"]), 1024),
        # single scale: the simple pyramid from the last block, p2..p6
        ("vision_transformer/toy_vit", "SimpleFeaturePyramid", ["p2", "p3", "p4", "p5", "p6"],
         dict(out_feature="stage11"), 1024),
        # fixed size, built at 1024 (img_size), strides 8..32: p3..p6
        ("pit/toy_pit", "TimmFPN", ["p3", "p4", "p5", "p6"],
         dict(out_features=["res3", "res4", "res5"], img_size=1024), 1024),
        # a multiple of 240: built and jittered at 1200
        ("crossvit/toy_crossvit", "SimpleFeaturePyramid", ["p2", "p3", "p4", "p5", "p6"],
         dict(out_feature="stage2", img_size=1200), 1200),
    ],
)  # fmt: skip
def test_lazy_seed_key_facts(golden_lazy, stem, neck, levels, bottom_up, image_size):
    cfg = golden_lazy(stem)
    model = cfg.model
    modules = {"TimmFPN": "fpn", "SimpleFeaturePyramid": "pyramid"}
    assert _target(model.backbone) == f"{PACKAGE}.runtime.{modules[neck]}.{neck}"
    model_name = stem.split("/")[1]
    assert _target(model.backbone.bottom_up) == f"{PACKAGE}.{stem.replace('/', '.')}.{model_name.title().replace('_', '')}Backbone"
    for key, value in bottom_up.items():
        assert model.backbone.bottom_up[key] == value, key
    assert model.backbone.bottom_up.pretrained is False and model.backbone.bottom_up.freeze_at == 0
    assert list(model.proposal_generator.in_features) == levels
    assert list(model.proposal_generator.anchor_generator.strides) == [2 ** int(p[1:]) for p in levels]
    assert list(model.proposal_generator.anchor_generator.sizes) == [[8 * 2 ** int(p[1:])] for p in levels]
    assert list(model.roi_heads.box_in_features) == list(model.roi_heads.mask_in_features) == levels[:-1]
    assert list(model.roi_heads.box_pooler.scales) == [1 / 2 ** int(p[1:]) for p in levels[:-1]]
    if neck == "TimmFPN":
        assert model.backbone.top_block.in_feature == levels[-2]
    assert model.input_format == "RGB" and cfg.dataloader.train.mapper.image_format == "RGB"
    resize, crop, _ = cfg.dataloader.train.mapper.augmentations
    assert (resize.target_height, resize.target_width, tuple(crop.crop_size)) == (image_size, image_size, (image_size,) * 2)
    assert model.roi_heads.box_head.conv_norm == model.roi_heads.mask_head.conv_norm == "naiveSyncBN_N"


# ------------------------------------------------------------------- key facts: Python


def _class_constants(source: str) -> dict:
    """Class-level constants of the one backbone class of a generated module."""
    tree = ast.parse(source)
    (cls,) = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    out = {"__class__": cls.name, "__bases__": [ast.unparse(b) for b in cls.bases]}
    for node in cls.body:
        if isinstance(node, ast.Assign):
            (target,) = node.targets
            if isinstance(node.value, ast.Tuple) and node.value.elts and isinstance(node.value.elts[0], ast.Call):
                out[target.id] = [
                    {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords} for call in node.value.elts
                ]
            else:
                out[target.id] = ast.literal_eval(node.value)
    return out


def _functions(source: str) -> dict:
    tree = ast.parse(source)
    return {
        node.name: [ast.unparse(d) for d in node.decorator_list]
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
    }


def test_resnet_like_module(rendered):
    source = rendered[f"{PACKAGE}/resnet/toy_resnet.py"]
    constants = _class_constants(source)
    assert constants["__class__"] == "ToyResnetBackbone" and constants["__bases__"] == ["TimmBackbone"]
    assert constants["TIMM_MODEL"] == "toy_resnet"
    assert constants["FEATURES"] == [
        dict(name="res1", module="act1", path="act1", index=0, channels=64, stride=2),
        dict(name="res2", module="layer1", path="layer1", index=1, channels=256, stride=4),
        dict(name="res3", module="layer2", path="layer2", index=2, channels=512, stride=8),
        dict(name="res4", module="layer3", path="layer3", index=3, channels=1024, stride=16),
        dict(name="res5", module="layer4", path="layer4", index=4, channels=2048, stride=32),
    ]
    assert constants["OUT_FEATURES"] == ("res2", "res3", "res4", "res5")
    assert constants["FPN_IN_FEATURES"] == ("res2", "res3", "res4", "res5")
    assert constants["LAYOUT"] == "NCHW"
    assert constants["SIZE_DIVISIBILITY"] == 32
    assert constants["INPUT_SIZE"] == (224, 224)
    assert constants["FIXED_INPUT_SIZE"] is False
    assert constants["PIXEL_MEAN"] == (0.485, 0.456, 0.406)  # 0..1 scale in the module
    assert constants["PIXEL_STD"] == (0.229, 0.224, 0.225)
    assert _functions(source) == {
        "build_toy_resnet_backbone": ["register_backbone"],
        "build_toy_resnet_fpn_backbone": ["register_backbone"],
    }
    assert "from ..runtime import" in source  # relative: works under any package name


@pytest.mark.parametrize(
    "path, layout, fixed, divisibility, features, out, fpn, extra",
    [
        (
            "swin_transformer/toy_swin.py", "NHWC", False, 32, ("res2", "res3", "res4", "res5"),
            ("res2", "res3", "res4", "res5"), ("res2", "res3", "res4", "res5"),
            {"CREATE_KWARGS": {"dynamic_img_size": True}, "INPUT_MULTIPLE": 32},
        ),
        ("levit/toy_levit.py", "NCHW", False, 64, ("res4", "res5", "res6"), ("res4", "res5", "res6"), ("res4", "res5", "res6"), {}),
        (
            "vision_transformer/toy_vit.py", "NCHW", False, 16, ("stage9", "stage10", "stage11"), ("stage11",), ("stage11",),
            {"CREATE_KWARGS": {"dynamic_img_pad": True, "dynamic_img_size": True}},
        ),
        (
            "pit/toy_pit.py", "NCHW", True, 1024, ("res3", "res4", "res5"), ("res3", "res4", "res5"), ("res3", "res4", "res5"),
            {
                "SIZE_SLACK": 1, "IMG_SIZE": 1024, "IMG_SIZE_MULTIPLE": 32,
                "GRID_PARAMS": [dict(pattern="pos_embed", kind="grid", dims=(2, 3), extra=0)],
            },
        ),
        (
            "crossvit/toy_crossvit.py", "NCHW", True, 1200, ("stage0", "stage1", "stage2"), ("stage2",), ("stage2",),
            {
                "IMG_SIZE": 1200, "IMG_SIZE_MULTIPLE": 240,
                "GRID_PARAMS": [
                    dict(pattern="pos_embed_0", kind="tokens", dims=(1,), extra=1),
                    dict(pattern="pos_embed_1", kind="tokens", dims=(1,), extra=1),
                ],
            },
        ),
        (
            "mlp_mixer/toy_mixer.py", "NCHW", True, 224, ("stage9", "stage10", "stage11"), ("stage11",), ("stage11",),
            {"FIXED_REASON": json.load(open(SPECS / "mixer_like.json"))["fixed_reason"]},
        ),
        (
            "inception_v3/toy_inception.py", "NCHW", False, 32, ("res1", "res2", "res3", "res4", "res5"),
            ("res2", "res3", "res4", "res5"), ("res2", "res3", "res4", "res5"), {"INPUT_PAD": 64, "INPUT_MULTIPLE": 32},
        ),
    ],
)  # fmt: skip
def test_other_modules(rendered, path, layout, fixed, divisibility, features, out, fpn, extra):
    constants = _class_constants(rendered[f"{PACKAGE}/{path}"])
    assert constants["LAYOUT"] == layout
    assert constants["FIXED_INPUT_SIZE"] is fixed
    assert constants["SIZE_DIVISIBILITY"] == divisibility
    assert constants["OUT_FEATURES"] == out
    assert constants["FPN_IN_FEATURES"] == fpn
    assert [f["name"] for f in constants["FEATURES"]] == list(features)
    for key in ("CREATE_KWARGS", "SIZE_SLACK", "INPUT_PAD", "IMG_SIZE", "IMG_SIZE_MULTIPLE", "GRID_PARAMS", "FIXED_REASON"):
        assert constants.get(key) == extra.get(key), key
    assert constants["INPUT_MULTIPLE"] == extra.get("INPUT_MULTIPLE", 1)


def test_swin_like_paths_and_docstring(rendered):
    source = rendered[f"{PACKAGE}/swin_transformer/toy_swin.py"]
    features = _class_constants(source)["FEATURES"]
    assert [f["path"] for f in features] == ["model.layers.0", "model.layers.1", "model.layers.2", "model.layers.3"]
    assert "returns NHWC maps (permuted to NCHW here)" in source


def test_package_init_maps_models_and_classes(rendered):
    tree = ast.parse(rendered[f"{PACKAGE}/__init__.py"])
    values = {
        node.target.id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.AnnAssign) and isinstance(node.value, ast.Dict) and node.value.keys
    }
    values.update(
        {
            node.targets[0].id: ast.literal_eval(node.value)
            for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict) and node.value.keys
        }
    )
    assert values["MODELS"] == {
        "toy_crossvit": "crossvit.toy_crossvit",
        "toy_inception": "inception_v3.toy_inception",
        "toy_levit": "levit.toy_levit",
        "toy_mixer": "mlp_mixer.toy_mixer",
        "toy_pit": "pit.toy_pit",
        "toy_resnet": "resnet.toy_resnet",
        "toy_sequencer": "sequencer.toy_sequencer",
        "toy_swin": "swin_transformer.toy_swin",
        "toy_vit": "vision_transformer.toy_vit",
    }
    assert values["CLASSES"] == {
        "ToyCrossvitBackbone": "toy_crossvit",
        "ToyInceptionBackbone": "toy_inception",
        "ToyLevitBackbone": "toy_levit",
        "ToyMixerBackbone": "toy_mixer",
        "ToyPitBackbone": "toy_pit",
        "ToyResnetBackbone": "toy_resnet",
        "ToySequencerBackbone": "toy_sequencer",
        "ToySwinBackbone": "toy_swin",
        "ToyVitBackbone": "toy_vit",
    }


def _table_rows(markdown: str):
    for line in markdown.splitlines():
        if line.startswith("| `"):
            yield [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]


def test_support_matrix(rendered):
    rows = {row[0].strip("`"): row for row in _table_rows(rendered[f"{PACKAGE}/SUPPORT.md"])}
    assert list(rows) == [
        "toy_crossvit",
        "toy_inception",
        "toy_levit",
        "toy_mixer",
        "toy_pit",
        "toy_resnet",
        "toy_sequencer",
        "toy_swin",
        "toy_vit",
        "toy_nasnet",
    ]
    assert all(len(row) == 10 for row in rows.values())  # an escaped "|" does not add a column
    assert rows["toy_resnet"][1:] == [
        "resnet",
        "generated",
        "res2 256@4, res3 512@8, res4 1024@16, res5 2048@32",
        "NCHW",
        "any, padded to a multiple of 32",
        "800 / 1333",
        "FPN over res2, res3, res4, res5",
        "",  # no sweep recorded for the golden specs
        "",  # nor its export columns
    ]
    assert rows["toy_swin"][4:6] == ["NHWC -> NCHW", "any, padded to a multiple of 32 (dynamic_img_size)"]
    assert rows["toy_levit"][5:8] == ["any, padded to a multiple of 64", "800 / 1333", "FPN over res4, res5, res6"]
    assert rows["toy_vit"][5:8] == [
        "any, padded to a multiple of 16 (dynamic_img_pad, dynamic_img_size)",
        "800 / 1333",
        "simple pyramid from stage11",
    ]
    assert rows["toy_pit"][5:7] == [
        "built at 1024x1024 (IMG_SIZE, multiple of 32; pretrained 224x224, resampled at load: pos_embed)",
        "1024x1024 square",
    ]
    assert rows["toy_crossvit"][6] == "1184x1184 square"  # built at 1200; its pyramid pads to multiples of 32
    assert rows["toy_mixer"][5].startswith("fixed at 224x224: its parameter blocks.*.mlp_tokens.fc1.weight is sized")
    assert rows["toy_mixer"][6] == "224x224 square"
    assert rows["toy_inception"][5] == "any, padded to a multiple of 32 (padded by 64, cropped)"
    assert rows["toy_sequencer"][2] == "generated" and rows["toy_sequencer"][7] == "simple pyramid from stage2"
    assert rows["toy_nasnet"][2] == "not generated" and "cell_stem_0\\|cell_0" in rows["toy_nasnet"][3]


# ----------------------------------------------------------- the renderer's safety net


def test_render_refuses_a_spec_whose_name_was_tampered_with():
    """Validation happens when facts are made; a spec altered afterwards (bypassing the
    frozen dataclass) is still refused before anything is rendered."""
    spec = make_spec(golden_facts("resnet_like"))
    object.__setattr__(spec.facts, "name", "x'); import os  #")
    with pytest.raises(UnsafeNameError):
        render_model(spec)
    with pytest.raises(UnsafeNameError):
        render_seeds(spec, PACKAGE)


def test_package_name_is_validated():
    with pytest.raises(UnsafeNameError, match="package name"):
        render_package("Bad-Package", [])


def test_format_file_rejects_invalid_output():
    with pytest.raises(FormatError, match="golden_pkg/x.py"):
        format_file("golden_pkg/x.py", "def broken(:\n")
    with pytest.raises(FormatError, match="x.yaml"):
        format_file("x.yaml", "a: [1, 2\n")
    with pytest.raises(FormatError, match="x.json"):
        format_file("x.json", "{'a': 1}")
    assert format_file("x.md", "no newline") == "no newline\n"
    assert format_file("x.py", "x=( 1,2 )") == "x = (1, 2)\n"


@pytest.mark.parametrize(
    "value, literal",
    [((1,), "(1,)"), ((), "()"), (("a", 2, 0.5, True, None), "('a', 2, 0.5, True, None)"), ("it's", '"it\'s"')],
)
def test_py_literal(value, literal):
    assert py_literal(value) == literal


@pytest.mark.parametrize(
    "value, error", [(float("nan"), ValueError), (float("inf"), ValueError), (object(), TypeError)]
)
def test_py_literal_refuses(value, error):
    with pytest.raises(error):
        py_literal(value)


_py_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4).map(tuple),
    max_leaves=12,
)


#: Reproducible in CI (the same examples every run) and immune to slow shared machines.
PROPERTY = settings(deadline=None, derandomize=True, max_examples=200)


@PROPERTY
@given(_py_values)
def test_py_literal_round_trips(value):
    assert ast.literal_eval(py_literal(value)) == value


@pytest.mark.parametrize("word", ["yes", "No", "on", "OFF", "y", "n", "true", "False", "null", "None"])
def test_yaml_literal_quotes_yaml_keywords(word):
    literal = yaml_literal(word)
    assert literal.startswith('"') and yaml.safe_load(literal) == word


@PROPERTY
@given(st.text(alphabet=string.printable.replace("\n", "").replace("\r", "").replace("\x0b", "").replace("\x0c", "")))
def test_yaml_literal_round_trips_printable_strings(text):
    assert yaml.safe_load(f"key: {yaml_literal(text)}\n") == {"key": text}


@PROPERTY
@given(st.lists(st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.booleans(), max_size=5))
def test_yaml_literal_round_trips_lists_of_numbers(values):
    assert yaml.safe_load(yaml_literal(values)) == values


@pytest.mark.parametrize("value", [123.675, 0.0001, 1e-07, 1e16, -2.5e-05])
def test_yaml_literal_floats_load_back_as_floats(value):
    """PyYAML (and so yacs/detectron2) resolves ``1e-07`` as a string: YAML 1.1 floats
    need a dot and a signed exponent."""
    loaded = yaml.safe_load(f"PIXEL_STD: [{yaml_literal(value)}]\n")["PIXEL_STD"][0]
    assert isinstance(loaded, float) and loaded == value
