"""The spec: name validation, facts validation and make_spec's pure policy.

Expected values here are worked out by hand from the facts (stride 2**k is res<k>,
detectron2's stages start at stride 4, FPN needs a doubling chain of powers of two,
inputs must be multiples of the lcm of the output strides).
"""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.names import UnsafeNameError, check_family, check_identifier, check_module_path, class_name
from generator.spec import FeatureFacts, GridParam, ModelFacts, SpecError, canonical_json, make_spec
from tests.helpers import facts_with, golden_facts, strided

# ------------------------------------------------------------------------------ names


@pytest.mark.parametrize(
    "name",
    [
        "resnet50'; import os; os.system('rm -rf /')  #",  # quotes and code
        'resnet"50',
        "resnet50\nimport os",
        "resnet50\n",  # a trailing newline must not slip through `$`
        "os.system",
        "a-b",
        "a b",
        "class",  # keywords
        "import",
        "lambda",
        "def",
        "async",
        "None",  # uppercase
        "ResNet50",
        "resnet50A",
        "50resnet",  # leading digit
        "_private",  # leading underscore
        "",
        "a" * 101,  # too long
        "résnet",  # non-ASCII
        "{{ spec.name }}",  # template syntax
    ],
)
def test_check_identifier_rejects_unsafe_names(name):
    with pytest.raises(UnsafeNameError, match="unsafe model name"):
        check_identifier(name)


@pytest.mark.parametrize("name", [None, 50, b"resnet50", ["resnet50"]])
def test_check_identifier_rejects_non_strings(name):
    with pytest.raises(UnsafeNameError):
        check_identifier(name)


@pytest.mark.parametrize("name", ["resnet50", "tf_efficientnet_b0", "convnext_atto", "a", "a" * 100, "match"])
def test_check_identifier_accepts_timm_style_names(name):
    assert check_identifier(name) == name


@pytest.mark.parametrize("family", ["runtime", "registry", "configs", "tests"])
def test_reserved_family_names_are_rejected(family):
    with pytest.raises(UnsafeNameError, match="reserved"):
        check_family(family)


@pytest.mark.parametrize("path", ["layer1", "stages.0", "blocks.11.norm", "model.layers.3", "stages_0"])
def test_module_paths_accept_dotted_paths(path):
    assert check_module_path(path) == path


@pytest.mark.parametrize("path", ["", ".layer1", "layer1.", "layer1..x", "layer1; import os", "a'b", "a.b c", "a\n"])
def test_module_paths_reject_anything_else(path):
    with pytest.raises(UnsafeNameError, match="unsafe module path"):
        check_module_path(path)


@pytest.mark.parametrize(
    "model, expected",
    [("resnet50", "Resnet50Backbone"), ("tf_efficientnet_b0", "TfEfficientnetB0Backbone"), ("toy_vit", "ToyVitBackbone")],
)
def test_class_name(model, expected):
    assert class_name(model) == expected


# ------------------------------------------------------------------------------ facts


def test_golden_facts_round_trip_through_canonical_json():
    facts = golden_facts("swin_like")
    again = ModelFacts.from_dict(json.loads(canonical_json(facts.to_dict())))
    assert again == facts
    assert canonical_json(again.to_dict()) == canonical_json(facts.to_dict())


@pytest.mark.parametrize(
    "changes, error, match",
    [
        (dict(layout="NCWH"), SpecError, "layout 'NCWH'"),
        (dict(layout="nchw"), SpecError, "layout"),
        (dict(name="resnet50'; import os"), UnsafeNameError, "unsafe model name"),
        (dict(name="Resnet50"), UnsafeNameError, "unsafe model name"),
        (dict(family="runtime"), UnsafeNameError, "reserved"),
        (dict(family="swin-transformer"), UnsafeNameError, "unsafe family name"),
        (dict(feature_class="FeatureList'Net"), UnsafeNameError, "feature class"),
        (dict(features=()), SpecError, "no feature levels"),
        (dict(pixel_mean=(0.5, 0.5)), SpecError, "3 values"),
        (dict(input_size=(224, 224)), SpecError, "3 values"),
        (dict(pixel_std=(0.2, 0.0, 0.2)), SpecError, "std positive"),
        (dict(pixel_mean=(float("nan"), 0.5, 0.5)), SpecError, "finite"),
        (dict(pixel_std=(float("inf"), 0.5, 0.5)), SpecError, "finite"),
    ],
)
def test_bad_model_facts_raise(changes, error, match):
    with pytest.raises(error, match=match):
        facts_with(**changes)


@pytest.mark.parametrize(
    "field, value, error, match",
    [
        ("module", "layer1; import os", UnsafeNameError, "unsafe module path"),
        ("module", "layer1'", UnsafeNameError, "unsafe module path"),
        ("path", "model.layer1)\nimport os", UnsafeNameError, "unsafe module path"),
        ("channels", 0, SpecError, "positive"),
        ("stride", 0, SpecError, "positive"),
        ("index", -1, SpecError, "index must be an int >= 0"),
        ("channels", True, SpecError, "channels must be an int"),
        ("stride", 4.0, SpecError, "stride must be an int"),
    ],
)
def test_bad_feature_facts_raise(field, value, error, match):
    good = dict(index=1, module="layer1", path="layer1", channels=64, reduction=4, stride=4)
    with pytest.raises(error, match=match):
        FeatureFacts(**{**good, field: value})


def test_facts_from_dict_names_unknown_and_missing_keys():
    data = golden_facts("resnet_like").to_dict()
    data["colour"] = "blue"
    del data["layout"]
    with pytest.raises(SpecError, match=r"unknown keys \['colour'\], missing keys \['layout'\]"):
        ModelFacts.from_dict(data)


# ----------------------------------------------------------------------------- policy


def test_resnet_like_policy():
    spec = make_spec(golden_facts("resnet_like"))
    assert [f.name for f in spec.features] == ["res1", "res2", "res3", "res4", "res5"]
    assert [f.module for f in spec.features] == ["act1", "layer1", "layer2", "layer3", "layer4"]
    # res1 (stride 2) is declared but not a default output: defaults start at stride 4.
    assert spec.out_features == ("res2", "res3", "res4", "res5")
    assert spec.fpn_in_features == ("res2", "res3", "res4", "res5")
    assert spec.size_divisibility == 32
    assert spec.naming.startswith("res<k>")


def test_levit_like_policy_names_stride_64_res6():
    spec = make_spec(golden_facts("levit_like"))
    assert [f.name for f in spec.features] == ["res4", "res5", "res6"]
    assert spec.out_features == ("res4", "res5", "res6")
    assert spec.fpn_in_features == ("res4", "res5", "res6")
    assert spec.size_divisibility == 64


def test_single_scale_vit_policy():
    spec = make_spec(golden_facts("vit_like"))
    # Three levels at stride 16 are not distinct: named after timm's feature index.
    assert [f.name for f in spec.features] == ["stage9", "stage10", "stage11"]
    # Single-scale: the last block is the default output (ViTDet), and the FPN variant is
    # the simple feature pyramid over it.
    assert spec.out_features == ("stage11",)
    assert spec.fpn_in_features == ("stage11",)
    assert spec.pyramid == "simple"
    assert spec.size_divisibility == 16
    assert spec.naming.startswith("stage<i>")


def test_strides_without_a_power_of_two_chain_get_the_simple_pyramid():
    spec = make_spec(golden_facts("sequencer_like"))  # strides 7, 14, 28
    assert spec.out_features == ("stage0", "stage1", "stage2")
    assert (spec.pyramid, spec.fpn_in_features) == ("simple", ("stage2",))
    assert spec.size_divisibility == 28
    spec = make_spec(strided(14, 14, 14))  # a patch-14 ViT
    assert (spec.out_features, spec.pyramid, spec.fpn_in_features) == (("stage2",), "simple", ("stage2",))
    spec = make_spec(strided(8, 32))  # powers of two, but not doubling: no chain of two
    assert (spec.pyramid, spec.fpn_in_features) == ("simple", ("res5",))


def test_the_input_multiple_joins_the_divisibility():
    spec = make_spec(facts_with("swin_like", input_multiple=224))  # maxvit-like window grid
    assert spec.size_divisibility == 224
    spec = make_spec(facts_with("vit_like", input_multiple=1))
    assert spec.size_divisibility == 16


def test_facts_recorded_before_optional_fields_existed_load_with_their_defaults():
    data = golden_facts("resnet_like").to_dict()
    optional = ("create_kwargs", "input_multiple", "size_slack", "input_pad", "omitted")
    optional += ("img_size", "img_size_multiple", "grid_params", "fixed_reason", "params", "meta_forward")
    for key in optional:
        data.pop(key, None)
    facts = ModelFacts.from_dict(data)
    assert tuple(getattr(facts, key) for key in optional) == ((), 1, 0, 0, (), 0, 0, (), "", 0, True)
    with pytest.raises(SpecError, match="missing keys"):
        ModelFacts.from_dict({k: v for k, v in data.items() if k != "layout"})


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(input_pad=-1), "input_pad"),
        (dict(size_slack=2), "size_slack"),
        (dict(input_multiple=0), "input_multiple"),
        (dict(omitted=("blocks.3; import os",)), "module path"),
        (dict(create_kwargs=(("dynamic_img_size", "yes"),)), "must be a bool"),
    ],
)
def test_bad_new_fields_are_refused(changes, message):
    with pytest.raises((SpecError, ValueError), match=message):
        facts_with("resnet_like", **changes)


_POS = dict(pattern="pos_embed", kind="tokens", dims=(1,), extra=1)


@pytest.mark.parametrize(
    "stem, changes, message",
    [
        ("mixer_like", dict(fixed_reason="a 'quoted' reason"), "unsafe fixed-size reason"),
        ("mixer_like", dict(fixed_reason='ends """ a docstring'), "unsafe fixed-size reason"),
        ("mixer_like", dict(fixed_reason="two\nlines"), "unsafe fixed-size reason"),
        ("resnet_like", dict(fixed_reason="a reason for a model that takes any size"), "fixed-size models only"),
        ("resnet_like", dict(img_size=1024, img_size_multiple=16), "fixed-size models that can move"),
        ("pit_like", dict(fixed_reason="both moved and stuck"), "without a fixed_reason"),
        ("pit_like", dict(img_size_multiple=0), "not a multiple of 0"),
        ("pit_like", dict(img_size=1000, img_size_multiple=16), "not a multiple of 16"),
        ("mixer_like", dict(img_size_multiple=16), "need an img_size"),
        ("mixer_like", dict(grid_params=(GridParam(**_POS),)), "need an img_size"),
        ("resnet_like", dict(params=-1), "params must be an int"),
        ("resnet_like", dict(meta_forward="yes"), "meta_forward must be a bool"),
    ],
)
def test_bad_detection_size_facts_are_refused(stem, changes, message):
    with pytest.raises((SpecError, ValueError), match=message):
        facts_with(stem, **changes)


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(_POS, pattern="pos_embed'); import os  #"), "unsafe parameter pattern"),
        (dict(_POS, pattern="blocks.**.x"), "unsafe parameter pattern"),
        (dict(_POS, kind="cubic"), "kind 'cubic'"),
        (dict(_POS, dims=(1, 2)), "tokens needs 1 dims"),
        (dict(_POS, kind="grid", dims=(1, 3), extra=0), "adjacent"),
        (dict(_POS, kind="line"), "extra must be 0"),
        (dict(_POS, extra=-1), "extra must be 0"),
    ],
)
def test_bad_grid_params_are_refused(fields, message):
    with pytest.raises((SpecError, ValueError), match=message):
        GridParam(**fields)


def test_a_fixed_size_model_built_at_a_detection_size_pads_to_that_square():
    """pit_like: pretrained at 224, built at 1024. detectron2 pads each batch to the
    square (divisibility 1024, for the FPN too), and the YAML tests at 1024."""
    spec = make_spec(golden_facts("pit_like"))
    assert spec.facts.build_size == (1024, 1024)
    assert (spec.size_divisibility, spec.fpn_size_divisibility, spec.test_size) == (1024, 1024, (1024, 1024))
    # built at a multiple of 240, 1200: the simple pyramid resamples its stride-12/16 map
    # on multiples of 32, and the largest that fits in 1200 is 1184
    crossvit = make_spec(golden_facts("crossvit_like"))
    assert (crossvit.size_divisibility, crossvit.fpn_size_divisibility, crossvit.test_size) == (1200, 32, (1184, 1184))


def test_a_fixed_size_model_that_cannot_move_stays_at_its_pretrained_size():
    spec = make_spec(golden_facts("mixer_like"))
    assert spec.facts.build_size == (224, 224)
    assert (spec.size_divisibility, spec.fpn_size_divisibility, spec.test_size) == (224, 224, (224, 224))


def test_models_that_take_any_size_keep_detectron2s_test_size():
    for stem in ("resnet_like", "swin_like", "vit_like", "levit_like", "inception_like"):
        assert make_spec(golden_facts(stem)).test_size == (800, 1333)


@pytest.mark.parametrize(
    "stem, plain, fpn",
    [
        ("resnet_like", 32, 32),  # FPN over res2..res5: its coarsest input, 32
        ("levit_like", 64, 64),  # FPN over res4..res6: 64
        ("vit_like", 16, 32),  # simple pyramid from stride 16: pooled to stride 32
        ("sequencer_like", 28, 32),  # simple pyramid from stride 28: resampled on multiples of 32
    ],
)
def test_the_fpn_variant_pads_to_what_its_pyramid_needs(stem, plain, fpn):
    spec = make_spec(golden_facts(stem))
    assert (spec.size_divisibility, spec.fpn_size_divisibility) == (plain, fpn)


def test_mixed_strides_use_stage_names_and_the_power_of_two_chain():
    # 24 is no power of two: the chain is the longest doubling run of powers of two
    # ending at the coarsest power-of-two level; the divisibility is lcm(4, 8, 16, 24).
    spec = make_spec(strided(4, 8, 16, 24))
    assert [f.name for f in spec.features] == ["stage0", "stage1", "stage2", "stage3"]
    assert spec.fpn_in_features == ("stage0", "stage1", "stage2")
    assert spec.size_divisibility == 48


def test_size_divisibility_is_the_lcm_of_the_default_outputs():
    # stride 2 is not a default output, so it does not count; lcm(4, 8, 12) = 24.
    spec = make_spec(strided(2, 4, 8, 12))
    assert spec.out_features == ("stage1", "stage2", "stage3")
    assert spec.size_divisibility == 24
    assert spec.fpn_in_features == ("stage1", "stage2")


def test_fpn_chain_stops_at_a_gap():
    spec = make_spec(strided(4, 8, 32))  # stride 16 is missing
    assert spec.out_features == ("res2", "res3", "res5")
    assert spec.fpn_in_features == ("res5",)


def test_only_fine_levels_default_to_the_last_one():
    spec = make_spec(strided(1, 2))
    assert [f.name for f in spec.features] == ["res0", "res1"]
    assert spec.out_features == ("res1",)
    assert spec.fpn_in_features == ("res1",)
    assert spec.size_divisibility == 2


def test_levels_are_ordered_by_timm_index():
    facts = golden_facts("resnet_like")
    shuffled = dataclasses.replace(facts, features=tuple(reversed(facts.features)))
    assert make_spec(shuffled) == dataclasses.replace(make_spec(facts), facts=shuffled)


def test_decreasing_strides_raise():
    facts = golden_facts("resnet_like")
    swapped = [dataclasses.replace(f, index=4 - f.index) for f in facts.features]
    with pytest.raises(SpecError, match="strides decrease"):
        make_spec(dataclasses.replace(facts, features=tuple(swapped)))


def test_explicit_out_features():
    spec = make_spec(golden_facts("resnet_like"), out_features=("res3", "res4", "res5"))
    assert spec.out_features == ("res3", "res4", "res5")
    assert spec.fpn_in_features == ("res3", "res4", "res5")
    assert spec.size_divisibility == 32


def test_explicit_out_features_must_exist():
    with pytest.raises(SpecError, match="res9"):
        make_spec(golden_facts("resnet_like"), out_features=("res9",))


def test_explicit_out_features_in_any_order_give_a_valid_fpn_chain():
    """The FPN chain must pair every level with its own stride, whatever the order the
    caller lists the outputs in (or make_spec must refuse the order)."""
    try:
        spec = make_spec(golden_facts("resnet_like"), out_features=("res5", "res4", "res3"))
    except SpecError:
        return
    strides = [spec.feature(name).stride for name in spec.fpn_in_features]
    assert strides == sorted(strides) and all(b == 2 * a for a, b in zip(strides, strides[1:])), (
        f"fpn_in_features {spec.fpn_in_features} have strides {strides}"
    )


def test_digest_is_stable_and_sensitive():
    spec = make_spec(golden_facts("resnet_like"))
    assert spec.digest() == make_spec(golden_facts("resnet_like")).digest()
    other = make_spec(facts_with(pixel_mean=(0.5, 0.5, 0.5)))
    assert other.digest() != spec.digest()
    assert json.loads(spec.canonical()) == json.loads(json.dumps(spec.to_dict()))


# --------------------------------------------------------------------- policy properties

_increasing_strides = st.lists(st.integers(1, 96), min_size=1, max_size=6).map(sorted)


def _is_pow2(value: int) -> bool:
    return value & (value - 1) == 0


@settings(max_examples=300, deadline=None, derandomize=True)
@given(_increasing_strides)
def test_policy_invariants(strides):
    spec = make_spec(strided(*strides))
    by_name = {f.name: f for f in spec.features}
    # naming: res<log2 stride> exactly when the strides are distinct powers of two
    distinct_pow2 = len(set(strides)) == len(strides) and all(_is_pow2(s) for s in strides)
    expected_names = [f"res{s.bit_length() - 1}" if distinct_pow2 else f"stage{i}" for i, s in enumerate(strides)]
    assert [f.name for f in spec.features] == expected_names
    # default outputs: the last level of a single-scale model, else every level at
    # stride >= 4, else the last level
    coarse = [n for n, s in zip(expected_names, strides) if s >= 4]
    single_scale = len(set(strides)) == 1
    assert list(spec.out_features) == ([expected_names[-1]] if single_scale or not coarse else coarse)
    outs = [by_name[n].stride for n in spec.out_features]
    chain = [by_name[n].stride for n in spec.fpn_in_features]
    if spec.pyramid == "simple":
        # the coarsest power-of-two output (if any) has no output at half its stride
        # just below it: no chain of two levels for detectron2's FPN
        assert spec.fpn_in_features == (spec.out_features[-1],)
        powers = [i for i, s in enumerate(outs) if _is_pow2(s)]
        if powers and powers[-1] > 0:
            assert outs[powers[-1] - 1] * 2 != outs[powers[-1]]
    else:
        # FPN: powers of two, each twice the previous, ending at the coarsest
        # power-of-two output, and as long as possible
        assert spec.pyramid == "fpn" and len(chain) >= 2
        assert all(_is_pow2(s) for s in chain)
        assert all(b == 2 * a for a, b in zip(chain, chain[1:]))
        assert chain[-1] == max(s for s in outs if _is_pow2(s))
        first = spec.out_features.index(spec.fpn_in_features[0])
        assert list(spec.out_features[first : first + len(chain)]) == list(spec.fpn_in_features)
        if first > 0:
            below = outs[first - 1]
            assert not (_is_pow2(below) and 2 * below == chain[0])
    # inputs: multiples of every output stride, and the smallest such
    assert spec.size_divisibility == math.lcm(*outs)