"""Generation is deterministic: the same selection gives byte-identical files whatever
the hash seed, the number of worker processes or the order specs arrive in."""

from __future__ import annotations

from generator.plan import Selection, build_plan
from generator.spec import make_spec
from tests.helpers import generate_small, golden_facts, tree_bytes

STEMS = ("levit_like", "resnet_like", "swin_like", "vit_like")


def test_generations_are_byte_identical_across_hash_seeds_and_jobs(small_generation, tmp_path):
    """small_generation: PYTHONHASHSEED=0, --jobs 1. This one: PYTHONHASHSEED=12345,
    --jobs 2 (both models introspected concurrently, finishing in any order)."""
    other = tmp_path / "other"
    generate_small(other, jobs=2, hashseed="12345")
    first, second = tree_bytes(small_generation), tree_bytes(other)
    assert sorted(first) == sorted(second)
    assert len(first) >= 19
    assert [path for path in first if first[path] != second[path]] == []


def test_plans_do_not_depend_on_spec_order():
    specs = [make_spec(golden_facts(stem)) for stem in STEMS]
    excluded = {"toy_b": ("fam_b", "reason b"), "toy_a": ("fam_a", "reason a")}
    versions = {"timm": "x", "black": "y"}
    forward = build_plan("pkg_det", Selection(patterns=("b*", "a*")), specs, excluded, versions)
    backward = build_plan(
        "pkg_det", Selection(patterns=("a*", "b*")), list(reversed(specs)), dict(reversed(excluded.items())), versions
    )
    assert dict(forward.files) == dict(backward.files)
    assert dict(forward.seeds) == dict(backward.seeds)
