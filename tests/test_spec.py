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
from generator.spec import FeatureFacts, ModelFacts, SpecError, canonical_json, make_spec
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
    assert spec.out_features == ("stage9", "stage10", "stage11")
    # No doubling chain: FPN over the last level only.
    assert spec.fpn_in_features == ("stage11",)
    assert spec.size_divisibility == 16
    assert spec.naming.startswith("stage<i>")


def test_strides_that_are_no_power_of_two_cannot_feed_an_fpn():
    with pytest.raises(SpecError, match=r"no feature level has a power-of-two stride.*\[7, 14, 28\]"):
        make_spec(golden_facts("sequencer_like"))
    with pytest.raises(SpecError, match="power-of-two"):
        make_spec(strided(14, 14, 14))  # a patch-14 ViT


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
    facts = strided(*strides)
    if not any(_is_pow2(s) for s in strides if s >= 4) and not (all(s < 4 for s in strides) and _is_pow2(strides[-1])):
        with pytest.raises(SpecError):
            make_spec(facts)
        return
    spec = make_spec(facts)
    by_name = {f.name: f for f in spec.features}
    # naming: res<log2 stride> exactly when the strides are distinct powers of two
    distinct_pow2 = len(set(strides)) == len(strides) and all(_is_pow2(s) for s in strides)
    expected_names = [f"res{s.bit_length() - 1}" if distinct_pow2 else f"stage{i}" for i, s in enumerate(strides)]
    assert [f.name for f in spec.features] == expected_names
    # default outputs: every level at stride >= 4, else the last level
    coarse = [n for n, s in zip(expected_names, strides) if s >= 4]
    assert list(spec.out_features) == (coarse or [expected_names[-1]])
    # FPN: powers of two, each twice the previous, ending at the coarsest power-of-two
    # output, and as long as possible
    chain = [by_name[n].stride for n in spec.fpn_in_features]
    assert chain and all(_is_pow2(s) for s in chain)
    assert all(b == 2 * a for a, b in zip(chain, chain[1:]))
    outs = [by_name[n].stride for n in spec.out_features]
    assert chain[-1] == max(s for s in outs if _is_pow2(s))
    # a contiguous run of the outputs that cannot be extended downwards
    first = spec.out_features.index(spec.fpn_in_features[0])
    assert list(spec.out_features[first : first + len(chain)]) == list(spec.fpn_in_features)
    if first > 0:
        below = outs[first - 1]
        assert not (_is_pow2(below) and 2 * below == chain[0])
    # inputs: multiples of every output stride, and the smallest such
    assert spec.size_divisibility == math.lcm(*outs)
