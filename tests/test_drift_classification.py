"""Drift classes that tests/test_drift.py and tests/test_write.py do not cover, the timm
version range the CLI accepts, and the report of ``tools/dev/drift_experiment.py``.

Already covered elsewhere: ADDED and REMOVED by a selection change, REMOVED when timm
stops listing a model, CHANGED with spec fields after a (simulated) timm upgrade,
HAND_EDITED modules and unknown files, STALE_SEED (tests/test_drift.py); the same kinds
from ``write_plan`` (tests/test_write.py). Here:

- a template change with the same specs: files CHANGED, no spec field reported;
- a model an upgrade makes unusable: REMOVED, reported as ``removed: now excluded``;
- a model an upgrade makes usable again: ADDED, reported as ``new model (was excluded)``.

No second timm is needed: the facts a run uses come from the manifest cache, which the
tests edit or replace (``generator.pipeline.cached_facts``); templates are replaced by an
edited copy (``generator.render.template_dir``). Nothing is introspected.
"""

from __future__ import annotations

import json
import shutil

import pytest

import generator.compat
import generator.pipeline
import generator.render
from generator.spec import ModelFacts
from tests.helpers import SMALL_PACKAGE, cli, load_json, reported
from tests.helpers import check_small as check
from tests.helpers import generate_small_cli as generate

PKG = SMALL_PACKAGE
RESNET18 = f"{PKG}/resnet/resnet18.py"
CONVNEXT = f"{PKG}/convnext/convnext_atto.py"
REASON = "introspection failed: NotImplementedError: Cannot copy out of meta tensor; no data!"


def json_report(root) -> dict:
    result = check(root, "--format", "json", "--no-diff")
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


# ------------------------------------------------------------ template, same specs


def test_a_template_change_with_the_same_specs_changes_files_but_no_spec_field(small_copy, tmp_path, monkeypatch):
    """What a generator upgrade looks like: every model module CHANGED (and the manifest,
    whose file hashes changed), seeds untouched, and no MODEL line: no spec changed."""
    templates = tmp_path / "templates"
    shutil.copytree(generator.render.template_dir(), templates)
    model_template = templates / "package" / "model.py.j2"
    model_template.write_text(model_template.read_text() + "\n# rendered by template v2\n")
    monkeypatch.setattr(generator.render, "template_dir", lambda: templates)

    result = check(small_copy)
    assert result.exit_code == 1, result.output
    assert reported(result) == {f"CHANGED {PKG}/MANIFEST.json", f"CHANGED {RESNET18}", f"CHANGED {CONVNEXT}"}
    assert "MODEL " not in result.stdout
    assert "+# rendered by template v2" in result.stdout  # the diff shows the template's change
    payload = json_report(small_copy)
    assert payload["drift"] is True and payload["models"] == {}
    assert payload["versions"]["generated_with"] == payload["versions"]["installed"]
    # (regenerating then writes the new modules without introspecting: tests/test_drift.py)


# ------------------------------------------------------- exclusions across upgrades


def _facts_excluding(model: str, reason: str):
    """``cached_facts`` as if the installed timm could no longer introspect ``model``."""
    real = generator.pipeline.cached_facts

    def cached_facts(manifest, timm_version):
        facts, excluded = real(manifest, timm_version)
        if model in facts:
            excluded[model] = (facts.pop(model).family, reason)
        return facts, excluded

    return cached_facts


def test_a_model_that_becomes_unusable_is_removed_with_its_reason(small_copy, monkeypatch):
    monkeypatch.setattr(generator.pipeline, "cached_facts", _facts_excluding("convnext_atto", REASON))
    result = check(small_copy, "--no-diff")
    assert result.exit_code == 1, result.output
    assert {f"REMOVED {CONVNEXT}", f"REMOVED {PKG}/convnext/__init__.py", f"CHANGED {PKG}/SUPPORT.md"} <= reported(
        result
    )
    assert not any(line.startswith("ADDED") or RESNET18 in line for line in reported(result))
    assert f"MODEL convnext_atto\n    removed: now excluded: {REASON}" in result.stdout
    assert json_report(small_copy)["models"] == {"convnext_atto": [f"removed: now excluded: {REASON}"]}

    generate(small_copy)  # the exclusion is recorded, with its reason
    manifest = load_json(small_copy / PKG / "MANIFEST.json")
    assert manifest["excluded"] == {"convnext_atto": {"family": "convnext", "reason": REASON}}
    assert "convnext_atto" not in manifest["models"]
    assert REASON in (small_copy / PKG / "SUPPORT.md").read_text()
    assert (small_copy / "configs" / "convnext" / "convnext_atto.yaml").is_file()  # seeds are the user's
    assert check(small_copy).exit_code == 0


def test_a_model_that_becomes_usable_again_is_added(small_copy, monkeypatch):
    """The other direction (timm 1.0.3's convnext under a generator without the meta
    shim, then the pinned timm): ADDED, and the report says why it was missing."""
    measured = {
        name: ModelFacts.from_dict(spec["facts"])
        for name, spec in load_json(small_copy / PKG / "MANIFEST.json")["models"].items()
    }
    monkeypatch.setattr(generator.pipeline, "cached_facts", _facts_excluding("convnext_atto", REASON))
    generate(small_copy)
    monkeypatch.setattr(generator.pipeline, "cached_facts", lambda manifest, timm_version: (dict(measured), {}))

    result = check(small_copy, "--no-diff")
    assert result.exit_code == 1, result.output
    assert {f"ADDED {CONVNEXT}", f"ADDED {PKG}/convnext/__init__.py", f"CHANGED {PKG}/SUPPORT.md"} <= reported(result)
    assert not any(line.startswith("REMOVED") for line in reported(result))
    assert json_report(small_copy)["models"] == {"convnext_atto": [f"new model (was excluded: {REASON})"]}
    generate(small_copy)
    assert (small_copy / CONVNEXT).is_file() and check(small_copy).exit_code == 0


# ------------------------------------------------------------- timm version range


@pytest.mark.parametrize("version", ["1.0.3", "1.0.9", "1.0.31", "1.1.0", "1.0.32.dev0"])
def test_timm_1_x_is_supported(version):
    assert generator.compat.timm_is_supported(version)
    assert generator.compat.unsupported_timm(version) is None


def test_the_installed_timm_is_read_without_importing_it():
    import timm

    assert generator.compat.installed_timm_version() == timm.__version__


@pytest.mark.parametrize("version", ["0.9.16", "0.6.13", "2.0.0", "2.1.0rc1", "nightly"])
def test_a_timm_outside_the_range_exits_2_naming_both(version, monkeypatch):
    monkeypatch.setattr(generator.compat, "installed_timm_version", lambda: version)
    monkeypatch.delenv(generator.compat.ANY_TIMM_ENV, raising=False)
    for command in (("list", "resnet18"), ("check", "--output", "nowhere"), ("generate", "resnet18", "-o", "nowhere")):
        result = cli(*command)
        assert result.exit_code == 2, (command, result.output)
        assert f"timm {version} is installed; d2timm-gen supports timm >=1.0,<2" in result.stderr
        assert result.stdout == ""


def test_no_timm_at_all_exits_2(monkeypatch):
    monkeypatch.setattr(generator.compat, "installed_timm_version", lambda: None)
    monkeypatch.setenv(generator.compat.ANY_TIMM_ENV, "1")  # cannot help without a timm
    result = cli("list", "resnet18")
    assert result.exit_code == 2 and "timm is not installed" in result.stderr


def test_the_override_runs_an_unsupported_timm_with_a_warning(monkeypatch):
    monkeypatch.setattr(generator.compat, "installed_timm_version", lambda: "2.0.0")
    monkeypatch.setenv(generator.compat.ANY_TIMM_ENV, "1")
    result = cli("list", "resnet18")
    assert result.exit_code == 0, result.output
    assert result.stdout == "resnet18\tresnet\n"
    assert "warning: timm 2.0.0 is outside the supported range >=1.0,<2" in result.stderr


# -------------------------------------------------- tools/dev/drift_experiment.py report


def test_the_drift_report_counts_and_quotes_the_check():
    from tools.dev.drift_experiment import classify, model_of, render_report

    payload = {
        "models": {
            "m_added": ["new model"],
            "m_back": [f"new model (was excluded: {REASON})"],
            "m_gone": ["removed: no longer listed by timm"],
            "m_spec": ["facts.features[3].channels: 1024 -> 512", "size_divisibility: 32 -> 64"],
            "m_other": ["facts.features[1].channels: 24 -> 32"],
            "m_excl": ["excluded reason: a -> b"],
        },
        "changes": [
            {"kind": "ADDED", "path": "generated/resnet/m_added.py"},
            {"kind": "REMOVED", "path": "generated/resnet/m_gone.py"},
            {"kind": "CHANGED", "path": "generated/resnet/m_spec.py"},
            {"kind": "CHANGED", "path": "generated/resnet/m_other.py"},
            {"kind": "CHANGED", "path": "generated/resnet/m_template.py"},
            {"kind": "CHANGED", "path": "configs/resnet/m_spec_fpn.yaml"},
            {"kind": "CHANGED", "path": "generated/MANIFEST.json"},
        ],
    }
    old_manifest = {
        "models": {name: {} for name in ("m_gone", "m_spec", "m_other", "m_template", "m_same")},
        "excluded": {"m_back": {"family": "resnet", "reason": REASON}},
    }
    groups = classify(payload["models"])
    assert {k: sorted(v) for k, v in groups.items()} == {
        "added": ["m_added", "m_back"],
        "changed": ["m_other", "m_spec"],
        "excluded": ["m_excl"],
        "removed": ["m_gone"],
    }
    assert model_of("configs/resnet/m_spec_fpn.yaml") == "m_spec" and model_of("generated/resnet/__init__.py") is None
    report = render_report(
        old="1.0.3",
        new="1.0.31",
        selection="family resnet",
        source="here",
        old_manifest=old_manifest,
        payload=payload,
        check_rc=1,
        timings={},
        command="tools/dev/drift_experiment.py --old 1.0.3",
        artefacts={},
    )
    assert "# Drift: timm 1.0.3 -> 1.0.31" in report
    for row in (
        "| models generated with timm 1.0.3 | 5 (1 excluded) |",
        "| models generated with timm 1.0.31 | 6 |",
        "| models added (new in timm 1.0.31, or no longer excluded) | 2 |",
        "| models removed (gone from timm, or now excluded) | 1 |",
        "| models whose spec changed | 2 |",
        "| models whose files changed with the same spec | 1 |",
        "| models unchanged | 1 |",
        "| files ADDED 1, REMOVED 1, CHANGED 5 | 7 |",
        "| `facts.features[].channels` | 2 | `m_other`: `facts.features[1].channels` 24 -> 32<br>"
        "`m_spec`: `facts.features[3].channels` 1024 -> 512 |",
        "| `size_divisibility` | 1 | `m_spec`: 32 -> 64 |",
    ):
        assert row in report, row
    assert f"- new model (was excluded: {REASON}) (1): `m_back`" in report
    assert "## Files changed with the same spec (1 models)\n\n`m_template`" in report
