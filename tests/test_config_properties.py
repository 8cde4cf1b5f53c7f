"""Property-based tests of config validation: any edited OUT_FEATURES / REMAPS / STRIDES
either builds a backbone whose outputs match what was asked for, or fails with a
ValueError naming the key at fault.

The backbone (resnet18, generated) is built on the meta device from a detectron2 config
carrying the edited keys, as a user's YAML would, with weight initialisation skipped.
"""

from __future__ import annotations

import re

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.compat import skip_meta_init
from tests.helpers import build_backbone, ceil_div, generated_class, model_config

MODEL, FAMILY = "resnet18", "resnet"
KEY = "MODEL.BACKBONE.CONFIG"
H, W = 64, 96


FEATURES = generated_class(MODEL).FEATURES
#: What OUT_FEATURES may name: feature names, timm modules, and names that are neither.
NAMES = [f.name for f in FEATURES] + [f.module for f in FEATURES] + ["layer9", "res7", "stem", ""]
REMAP_NAMES = ["res2", "res3", "p4", "out", "a", "b", "1bad", "has space", "res5"]
STRIDES = [1, 2, 4, 8, 16, 32, 64]

edits = st.fixed_dictionaries(
    {
        "OUT_FEATURES": st.lists(st.sampled_from(NAMES), max_size=5),
        "REMAPS": st.lists(st.sampled_from(REMAP_NAMES), max_size=5),
        "STRIDES": st.lists(st.sampled_from(STRIDES), max_size=5),
    }
)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(edits)
def test_edited_keys_build_matching_shapes_or_fail_naming_the_key(edit):
    overrides = []
    for key, values in edit.items():
        overrides += [f"{KEY}.{key}", str([v for v in values]) if values else "[]"]
    overrides += [f"{KEY}.CHANNELS", "[]"]
    cfg = model_config(MODEL, FAMILY, fpn=False, overrides=overrides)
    try:
        with skip_meta_init():
            backbone = build_backbone(cfg, device="meta")
    except ValueError as exc:
        named = re.findall(r"MODEL\.BACKBONE\.CONFIG\.([A-Z_]+)", str(exc))
        assert named and set(named) <= set(edit), f"{exc} does not name an edited key"
        return
    # It built: the outputs are what was asked for, in order of stride, with the
    # declared channels and strides, and the maps have those sizes.
    by_key = {f.name: f for f in FEATURES} | {f.module: f for f in FEATURES}
    asked = edit["OUT_FEATURES"] or list(type(backbone).OUT_FEATURES)
    chosen = [by_key[name] for name in asked]
    names = edit["REMAPS"] or [f.name for f in chosen]
    pairs = sorted(zip(names, chosen), key=lambda pair: pair[1].index)
    if edit["STRIDES"]:
        assert list(edit["STRIDES"]) == [f.stride for f in chosen]
    shapes = backbone.output_shape()
    assert list(shapes) == [name for name, _ in pairs]
    assert {n: (s.channels, s.stride) for n, s in shapes.items()} == {n: (f.channels, f.stride) for n, f in pairs}
    with torch.no_grad():
        maps = backbone.eval()(torch.empty(1, 3, H, W, device="meta"))
    assert {n: tuple(t.shape) for n, t in maps.items()} == {
        n: (1, f.channels, ceil_div(H, f.stride), ceil_div(W, f.stride)) for n, f in pairs
    }


def test_the_strategy_reaches_both_outcomes():
    """The property above is not vacuous: valid edits build and invalid ones fail."""
    cfg = model_config(
        MODEL,
        FAMILY,
        fpn=False,
        overrides=[
            f"{KEY}.OUT_FEATURES",
            "['layer2', 'layer4']",
            f"{KEY}.REMAPS",
            "['a', 'b']",
            f"{KEY}.STRIDES",
            "[8, 32]",
            f"{KEY}.CHANNELS",
            "[]",
        ],
    )
    with skip_meta_init():
        assert list(build_backbone(cfg, device="meta").output_shape()) == ["a", "b"]
    cfg = model_config(
        MODEL, FAMILY, fpn=False, overrides=[f"{KEY}.STRIDES", "[4, 8, 16, 64]", f"{KEY}.CHANNELS", "[]"]
    )
    with pytest.raises(ValueError, match=rf"{KEY}\.STRIDES"):
        with skip_meta_init():
            build_backbone(cfg, device="meta")
