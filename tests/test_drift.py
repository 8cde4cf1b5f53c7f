"""Drift: what ``d2timm-gen check`` reports after hand edits, seed edits, selection and
catalog changes and a simulated timm upgrade, and what ``generate`` then does.

Every test works on a private copy (``small_copy``) of one real generation of
convnext_atto + resnet18 into package ``pkg_small``.
"""

from __future__ import annotations

import json

import pytest
import torch

from tests.helpers import (
    MANIFEST,
    ROOT,
    SMALL_MODELS,
    SMALL_PACKAGE,
    cli,
    edit_manifest,
    load_json,
    reported,
    summary_line,
)
from tests.helpers import check_small as check
from tests.helpers import generate_small_cli as generate

PKG = SMALL_PACKAGE
RESNET18 = f"{PKG}/resnet/resnet18.py"
CONVNEXT = f"{PKG}/convnext/convnext_atto.py"
FPN_SEED = "configs/resnet/resnet18_fpn.yaml"
PLAIN_SEED = "configs/resnet/resnet18.yaml"


# ---------------------------------------------------------------------- hand edits


def test_a_hand_edited_module_is_reported_and_regenerate_restores_it(small_copy):
    path = small_copy / RESNET18
    original = path.read_text()
    path.write_text(original.replace("SIZE_DIVISIBILITY = 32", "SIZE_DIVISIBILITY = 64"))
    result = check(small_copy)
    assert result.exit_code == 1
    assert reported(result) == {f"HAND_EDITED {RESNET18}"}
    assert "-    SIZE_DIVISIBILITY = 64\n+    SIZE_DIVISIBILITY = 32" in result.stdout  # the diff
    assert "1 files drifted" in result.stdout
    generate(small_copy)
    assert path.read_text() == original
    assert check(small_copy).exit_code == 0


def test_a_file_the_generator_never_wrote_is_hand_edited(small_copy):
    (small_copy / PKG / "resnet" / "notes.py").write_text("# mine\n")
    result = check(small_copy, "--no-diff")
    assert result.exit_code == 1 and reported(result) == {f"HAND_EDITED {PKG}/resnet/notes.py"}


def test_a_deleted_module_is_reported(small_copy):
    (small_copy / CONVNEXT).unlink()
    result = check(small_copy, "--no-diff")
    assert result.exit_code == 1 and reported(result) == {f"ADDED {CONVNEXT}"}


def test_check_patterns_limit_the_report(small_copy):
    for rel in (RESNET18, CONVNEXT):
        with open(small_copy / rel, "a") as handle:
            handle.write("# edited\n")
    result = check(small_copy, "resnet18", "--no-diff")
    assert result.exit_code == 1 and reported(result) == {f"HAND_EDITED {RESNET18}"}


# ---------------------------------------------------------------------- YAML seeds

USER_EDIT = "SOLVER:\n  BASE_LR: 0.001  # mine\n"


def test_an_edited_seed_survives_regeneration_and_is_not_drift(small_copy):
    seed = small_copy / FPN_SEED
    edited = seed.read_text() + USER_EDIT
    seed.write_text(edited)
    result = generate(small_copy)
    assert "0 files changed" in summary_line(result.stdout)
    assert seed.read_text() == edited
    report = check(small_copy)
    assert report.exit_code == 0 and FPN_SEED not in report.stdout


def _set_layer4_channels(root, channels: int) -> None:
    def edit(manifest):
        for feature in manifest["models"]["resnet18"]["facts"]["features"]:
            if feature["module"] == "layer4":
                feature["channels"] = channels

    edit_manifest(root, PKG, edit)


def _old_generation(root, *, older_timm: bool) -> None:
    """Make ``root`` a consistent package generated when resnet18's layer4 had 1024
    channels (cached facts edited, then regenerated from the cache). Then either record
    an older timm (the cache is no longer trusted: a real re-introspection finds 512),
    or restore the true facts in the cache (a spec change, no introspection)."""
    _set_layer4_channels(root, 1024)
    generate(root)
    assert "channels=1024" in (root / RESNET18).read_text()
    if older_timm:
        edit_manifest(root, PKG, lambda manifest: manifest["versions"].update(timm="0.9.0"))
    else:
        _set_layer4_channels(root, 512)


def test_a_timm_upgrade_is_reported_as_changed_with_the_spec_fields(small_copy):
    _old_generation(small_copy, older_timm=True)
    result = check(small_copy)
    assert result.exit_code == 1
    assert reported(result) == {
        f"CHANGED {PKG}/MANIFEST.json",
        f"CHANGED {PKG}/SUPPORT.md",
        f"CHANGED {RESNET18}",
        f"CHANGED {FPN_SEED}",
        f"CHANGED {PLAIN_SEED}",
    }
    assert "generated with timm 0.9.0; installed timm" in result.stdout
    assert "MODEL resnet18" in result.stdout and "MODEL convnext_atto" not in result.stdout
    assert (
        '-        Feature(name="res5", module="layer4", path="layer4", index=4, channels=1024, stride=32),'
        in result.stdout
    )
    assert (
        '+        Feature(name="res5", module="layer4", path="layer4", index=4, channels=512, stride=32),'
        in result.stdout
    )
    assert "-      CHANNELS: [64, 128, 256, 1024]\n+      CHANNELS: [64, 128, 256, 512]" in result.stdout

    payload = json.loads(check(small_copy, "--format", "json").stdout)
    assert payload["drift"] is True
    assert any("channels: 1024 -> 512" in line for line in payload["models"]["resnet18"]), payload["models"]
    assert "convnext_atto" not in payload["models"]

    # generate measures both models again (the cache was made by another timm)
    result = generate(small_copy)
    assert "(2 introspected, 0 from the manifest cache)" in summary_line(result.stdout)
    assert "channels=512" in (small_copy / RESNET18).read_text()
    assert check(small_copy).exit_code == 0


def test_a_module_from_another_timm_refuses_to_build():
    """The run-time half of the drift check: a module whose facts the installed timm
    contradicts fails at build time, saying to regenerate."""
    from generated.resnet.resnet18 import Resnet18Backbone

    class Drifted(Resnet18Backbone):
        FEATURES = tuple(f._replace(channels=1024) if f.module == "layer4" else f for f in Resnet18Backbone.FEATURES)

    with torch.device("meta"), pytest.raises(RuntimeError, match="timm changed: regenerate"):
        Drifted()


def test_an_edited_seed_whose_default_changed_is_stale_and_kept(small_copy):
    seed = small_copy / FPN_SEED
    _old_generation(small_copy, older_timm=False)
    edited = seed.read_text() + USER_EDIT
    seed.write_text(edited)
    report = check(small_copy, "--no-diff")
    assert f"STALE_SEED {FPN_SEED}" in reported(report) and f"CHANGED {PLAIN_SEED}" in reported(report)
    result = generate(small_copy)
    assert f"STALE_SEED {FPN_SEED}" in result.stderr
    assert seed.read_text() == edited  # kept
    assert "CHANNELS: [64, 128, 256, 512]" in (small_copy / PLAIN_SEED).read_text()  # untouched seed updated


def test_a_stale_seed_stays_reported_after_regeneration(small_copy):
    """generate says "kept yours (see `d2timm-gen check` for the new default)": check
    must still show that seed and its new default afterwards."""
    seed = small_copy / FPN_SEED
    _old_generation(small_copy, older_timm=False)
    seed.write_text(seed.read_text() + USER_EDIT)
    generate(small_copy)
    report = check(small_copy)
    assert report.exit_code == 0  # a stale seed is no drift
    assert f"STALE_SEED {FPN_SEED}" in reported(report), report.stdout
    assert "CHANNELS: [64, 128, 256, 512]" in report.stdout  # the new default, in the diff


# ----------------------------------------------------------- selection and catalog


def _select(root, patterns) -> None:
    def edit(manifest):
        manifest["selection"]["patterns"] = sorted(patterns)

    edit_manifest(root, PKG, edit)


def test_a_model_dropped_from_the_selection_is_removed(small_copy):
    _select(small_copy, ["resnet18"])
    result = check(small_copy, "--no-diff")
    assert result.exit_code == 1
    assert {f"REMOVED {CONVNEXT}", f"REMOVED {PKG}/convnext/__init__.py"} <= reported(result)
    assert "MODEL convnext_atto" in result.stdout
    generate(small_copy)
    assert not (small_copy / PKG / "convnext").exists()
    assert (small_copy / "configs" / "convnext" / "convnext_atto_fpn.yaml").is_file()  # seeds are the user's
    assert check(small_copy).exit_code == 0


def test_a_model_timm_no_longer_lists_is_removed(small_copy, monkeypatch):
    """A selected model that disappears from timm is drift (REMOVED), not an error."""
    import generator.cli
    from generator.discover import catalog_from, load_catalog

    full = load_catalog()
    shrunk = catalog_from([ref for ref in full.models if ref.name != "convnext_atto"], full.unsafe)
    monkeypatch.setattr(generator.cli, "load_catalog", lambda: shrunk)  # the CLI reads timm's catalog once
    result = check(small_copy, "--no-diff")
    assert result.exit_code == 1, result.output
    assert f"REMOVED {CONVNEXT}" in reported(result)


def test_a_model_added_to_the_selection_is_added(small_copy):
    _select(small_copy, [*SMALL_MODELS, "resnet10t"])
    result = check(small_copy, "--no-diff")
    assert result.exit_code == 1
    assert {
        f"ADDED {PKG}/resnet/resnet10t.py",
        "ADDED configs/resnet/resnet10t.yaml",
        "ADDED configs/resnet/resnet10t_fpn.yaml",
        f"CHANGED {PKG}/__init__.py",
    } <= reported(result)
    assert not (small_copy / PKG / "resnet" / "resnet10t.py").exists()  # check never writes


# ------------------------------------------------------------ against the repository


def test_fresh_introspection_reproduces_the_checked_in_specs(small_generation):
    """The shared generation introspected resnet18 and convnext_atto today; the specs
    and modules must equal those checked in (which `check` only re-renders)."""
    fresh = load_json(small_generation / PKG / "MANIFEST.json")
    repo = load_json(MANIFEST)
    for model in SMALL_MODELS:
        assert fresh["models"][model] == repo["models"][model], model
        family = fresh["models"][model]["facts"]["family"]
        assert (small_generation / PKG / family / f"{model}.py").read_bytes() == (
            ROOT / "generated" / family / f"{model}.py"
        ).read_bytes()
    for module in (small_generation / PKG / "runtime").glob("*.py"):
        assert module.read_bytes() == (ROOT / "generated" / "runtime" / module.name).read_bytes(), module.name
