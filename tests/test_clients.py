"""The configs of README.md's "Use with ..." section, run as they stand there, and the
class-level API they rely on.

Each config in the README follows a ``<!-- file: PATH -->`` line; the tests write it to
``PATH`` under a temporary directory and load it as its client does. detectron2's
configs run against detectron2 itself; detrex's DINO and DETR's detectron2 wrapper run
against the stand-ins of :mod:`tests.stand_ins` (those projects cannot be installed here),
whose docstring says what they reproduce and what they do not.
"""

from __future__ import annotations

import math
import re
import sys

import pytest
import torch

from tests.helpers import ROOT, build_meta_model, ceil_div, generated_class, lazy_seed_path, not_a_multiple, shape_only
from generator.compat import skip_meta_init

README = ROOT / "README.md"
BLOCK = re.compile(r"<!-- file: (?P<path>\S+) -->\n```\w+\n(?P<code>.*?)\n```", re.DOTALL)


def readme_configs() -> dict:
    """The README's config files, by path."""
    return {m["path"]: m["code"] + "\n" for m in BLOCK.finditer(README.read_text(encoding="utf-8"))}


def write_config(tmp_path, path: str, text: str = None):
    target = tmp_path / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(readme_configs()[path] if text is None else text, encoding="utf-8")
    return target


def _has_simple_feature_pyramid() -> bool:
    import detectron2.modeling as modeling

    return hasattr(modeling, "SimpleFeaturePyramid")


ON_MAIN = pytest.mark.skipif(
    not _has_simple_feature_pyramid(),
    reason="detectron2 v0.6 has no SimpleFeaturePyramid (ViTDet): install detectron2 main "
    "(make install D2_SOURCE=git+https://github.com/facebookresearch/detectron2.git) to run it",
)


def test_the_readme_lists_every_use():
    assert set(readme_configs()) == {
        "configs/convnext/convnext_tiny_mask_rcnn.py",
        "vitdet_vit_base.py",
        "vitdet_dinov2_small.py",
        "projects/dino/configs/dino_convnext_tiny.py",
        "d2/configs/detr_convnext_tiny.yaml",
    }


# ------------------------------------------------------------------ detectron2 LazyConfig


def test_the_readme_seed_is_the_seed_on_disk():
    path = "configs/convnext/convnext_tiny_mask_rcnn.py"
    assert readme_configs()[path] == (ROOT / path).read_text(encoding="utf-8")


def _instantiate_meta(cfg):
    from detectron2.config import instantiate

    with skip_meta_init(), torch.device("meta"):
        return instantiate(cfg.model).eval()


def _forward_meta(net, sizes):
    """``preprocess_image`` of a batch of empty images, then the backbone (shape-only)."""
    with shape_only(), torch.no_grad():
        images = net.preprocess_image([{"image": torch.empty(3, h, w, device="meta")} for h, w in sizes])
        return images, net.backbone(images.tensor)


def _assert_maps(maps, shapes, size, batch=1):
    assert {n: tuple(t.shape) for n, t in maps.items()} == {
        n: (batch, s.channels, ceil_div(size[0], s.stride), ceil_div(size[1], s.stride)) for n, s in shapes.items()
    }


def test_lazy_config_save_round_trips_a_generated_class(tmp_path):
    """A run saves its config as YAML (default_setup): the seed's generated class is saved
    under an importable name and the saved config builds the same model."""
    from detectron2.config import LazyConfig

    cfg = LazyConfig.load(str(lazy_seed_path("convnext_tiny", "convnext")))
    LazyConfig.save(cfg, str(tmp_path / "config.yaml"))
    assert not (tmp_path / "config.yaml.pkl").exists(), "the seed did not save as YAML"
    again = LazyConfig.load(str(tmp_path / "config.yaml"))
    net = _instantiate_meta(again)
    assert type(net.backbone.bottom_up) is generated_class("convnext_tiny")
    assert net.backbone.output_shape() == _instantiate_meta(cfg).backbone.output_shape()


@pytest.mark.parametrize(
    "model, selection, remaps",
    [
        ("convnext_tiny", ["res3", "res4", "res5"], None),
        ("convnext_tiny", ["stages.3", "stages.1"], ["c5", "c3"]),  # timm modules, renamed, any order
        ("levit_128s", None, None),
        ("vit_base_patch16_224", ["stage5", "stage11"], None),
    ],
)
def test_feature_shapes_are_what_an_instance_reports(model, selection, remaps):
    cls = generated_class(model)
    with skip_meta_init(), torch.device("meta"):
        backbone = cls(out_features=selection, remaps=remaps)
    assert cls.feature_shapes(selection, remaps) == backbone.output_shape()
    assert list(cls.feature_shapes(selection, remaps)) == backbone._out_features


def test_out_feature_selects_one_level_and_refuses_a_second_selection():
    cls = generated_class("vit_base_patch16_224")
    with skip_meta_init(), torch.device("meta"):
        assert list(cls(out_feature="stage5").output_shape()) == ["stage5"]
        with pytest.raises(ValueError, match="out_features or out_feature, not both"):
            cls(out_feature="stage5", out_features=["stage11"])


# ------------------------------------------------------------------------------ ViTDet


@ON_MAIN
def test_vitdet_on_detectron2_main_takes_a_generated_vit(tmp_path):
    from detectron2.config import LazyConfig
    from detectron2.modeling import SimpleFeaturePyramid

    cfg = LazyConfig.load(str(write_config(tmp_path, "vitdet_vit_base.py")))
    assert cfg.model.backbone.in_feature == "stage11"  # ViTDet's interpolation of net.out_feature
    net = _instantiate_meta(cfg)
    assert type(net.backbone) is SimpleFeaturePyramid
    assert type(net.backbone.net) is generated_class("vit_base_patch16_224")
    images, maps = _forward_meta(net, [(683, 1024)])
    assert tuple(images.tensor.shape[-2:]) == (1024, 1024)  # ViTDet's square padding
    _assert_maps(maps, net.backbone.output_shape(), (1024, 1024))


@ON_MAIN
def test_detectron2_mains_pyramid_refuses_a_patch_14_model():
    """Why the package has its own pyramid: main's makes strides in_stride / scale."""
    from detectron2.modeling import SimpleFeaturePyramid

    cls = generated_class("vit_small_patch14_dinov2")
    with skip_meta_init(), torch.device("meta"):
        net = cls(out_feature="stage11")
        with pytest.raises(AssertionError, match="not log2 contiguous"):
            SimpleFeaturePyramid(net, "stage11", out_channels=256, scale_factors=(4.0, 2.0, 1.0, 0.5))


def test_the_package_pyramid_takes_a_patch_14_model(tmp_path):
    from detectron2.config import LazyConfig

    from generated.runtime import SimpleFeaturePyramid

    net = _instantiate_meta(LazyConfig.load(str(write_config(tmp_path, "vitdet_dinov2_small.py"))))
    assert type(net.backbone) is SimpleFeaturePyramid
    shapes = net.backbone.output_shape()
    assert {n: s.stride for n, s in shapes.items()} == {"p2": 4, "p3": 8, "p4": 16, "p5": 32, "p6": 64}
    images, maps = _forward_meta(net, [(800, 1199)])
    _assert_maps(maps, shapes, images.tensor.shape[-2:])


# ------------------------------------------------------------------------------- detrex

DETREX_RECIPE = '''"""Stand-in for detrex's projects/dino/configs/dino_r50_4scale_12ep.py (its other parts)."""
from omegaconf import OmegaConf

dataloader = OmegaConf.create()
lr_multiplier = OmegaConf.create()
optimizer = OmegaConf.create()
train = OmegaConf.create(dict(init_checkpoint="detectron2://ImageNetPretrained/torchvision/R-50.pkl"))
'''

DETREX_MODEL = '''"""Stand-in for detrex's projects/dino/configs/models/dino_r50.py: DINO's backbone and neck."""
from detectron2.config import LazyCall as L
from detectron2.layers import ShapeSpec
from detectron2.modeling.backbone import BasicStem, ResNet

from tests.stand_ins import DINO, ChannelMapper

model = L(DINO)(
    backbone=L(ResNet)(
        stem=L(BasicStem)(in_channels=3, out_channels=64, norm="FrozenBN"),
        stages=L(ResNet.make_default_stages)(depth=50, stride_in_1x1=False, norm="FrozenBN"),
        out_features=["res3", "res4", "res5"],
        freeze_at=1,
    ),
    neck=L(ChannelMapper)(
        input_shapes={"res3": ShapeSpec(channels=512), "res4": ShapeSpec(channels=1024), "res5": ShapeSpec(channels=2048)},
        in_features=["res3", "res4", "res5"],
        out_channels=256,
        num_outs=4,
    ),
    pixel_mean=[123.675, 116.280, 103.530],
    pixel_std=[58.395, 57.120, 57.375],
    input_format="RGB",
)
'''


def test_detrex_dino_reads_four_levels_of_a_batch_padded_to_its_largest_image(tmp_path, monkeypatch):
    from detectron2.config import LazyConfig, instantiate

    monkeypatch.syspath_prepend(str(ROOT))
    write_config(tmp_path, "projects/dino/configs/dino_r50_4scale_12ep.py", DETREX_RECIPE)
    write_config(tmp_path, "projects/dino/configs/models/dino_r50.py", DETREX_MODEL)
    cfg = LazyConfig.load(str(write_config(tmp_path, "projects/dino/configs/dino_convnext_tiny.py")))
    cfg.model.backbone.pretrained = False  # no hub here
    assert cfg.train.init_checkpoint == ""
    torch.manual_seed(0)
    model = instantiate(cfg.model).eval()
    cls = generated_class("convnext_tiny")
    assert type(model.backbone) is cls
    sizes = [not_a_multiple((203, 301)), not_a_multiple((257, 190))]
    batch = [{"image": torch.rand(3, h, w) * 255} for h, w in sizes]
    with torch.no_grad():
        images, features, masks = model(batch)
    height, width = images.tensor.shape[-2:]
    assert (height, width) == (257, 301)  # the largest image's sides, no divisibility
    strides = [8, 16, 32, 64]  # res3..res5, and the neck's extra level
    for feature, mask, stride in zip(features, masks, strides):
        assert tuple(feature.shape) == (2, 256, ceil_div(height, stride), ceil_div(width, stride)), stride
        assert mask.shape == (2, *feature.shape[-2:]) and torch.isfinite(feature).all()
    # every level's mask marks the second image's padded columns, as DINO resizes it
    assert masks[0][1, 0, -1] and not masks[0][1, 0, 0]


# --------------------------------------------------------------------------------- DETR

DETR_BASE = """# Stand-in for DETR's d2/configs/detr_256_6_6_torchvision.yaml: the keys detectron2 knows.
MODEL:
  META_ARCHITECTURE: "Detr"
  WEIGHTS: "detectron2://ImageNetPretrained/torchvision/R-50.pkl"
  PIXEL_MEAN: [123.675, 116.280, 103.530]
  PIXEL_STD: [58.395, 57.120, 57.375]
  MASK_ON: False
  RESNETS:
    DEPTH: 50
    STRIDE_IN_1X1: False
    OUT_FEATURES: ["res2", "res3", "res4", "res5"]
INPUT:
  MIN_SIZE_TRAIN: (480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800)
  FORMAT: "RGB"
"""


def test_detr_masks_line_up_with_the_generated_backbone(tmp_path):
    """DETR's setup() with the README's two lines, then its MaskedBackbone on a batch padded
    to its largest image."""
    from detectron2.config import get_cfg
    from detectron2.structures import ImageList

    import generated
    from tests.stand_ins import MaskedBackbone

    write_config(tmp_path, "d2/configs/detr_256_6_6_torchvision.yaml", DETR_BASE)
    path = write_config(tmp_path, "d2/configs/detr_convnext_tiny.yaml")
    cfg = get_cfg()
    generated.add_timm_config(cfg)
    cfg.merge_from_file(str(path))
    cfg.merge_from_list(["MODEL.BACKBONE.CONFIG.PRETRAINED", "False"])  # no hub here
    assert generated.ensure_registered(cfg)
    assert cfg.MODEL.WEIGHTS == "" and cfg.INPUT.FORMAT == "RGB"
    torch.manual_seed(0)
    backbone = MaskedBackbone(cfg).eval()
    assert backbone.num_channels == 768 and backbone.feature_strides == [32]
    sizes = [not_a_multiple((411, 598)), not_a_multiple((500, 333))]
    images = ImageList.from_tensors([torch.randn(3, h, w) for h, w in sizes])
    with torch.no_grad():
        features, masks = backbone(images)
    (name, feature), (mask,) = list(features.items())[-1], masks
    assert name == "res5" and mask.shape == (2, *feature.shape[-2:])
    height, width = images.tensor.shape[-2:]
    assert tuple(feature.shape) == (2, 768, math.ceil(height / 32), math.ceil(width / 32))
    assert not mask[0, : math.ceil(411 / 32), : math.ceil(598 / 32)].any() and mask[1, :, -1].all()
