"""``d2timm-gen`` commands: list, generate, check and show, exit codes and messages, and
the spec cache. Generations go to tmp directories with a ``pkg_*`` package name; the
shared one (``small_generation``) is convnext_atto + resnet18.
"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import pytest
from filelock import FileLock

import templates
from tests.helpers import LOCK_NAME, ROOT, SMALL_MODELS, SMALL_PACKAGE, cli, cli_subprocess, summary_line

# ---------------------------------------------------------------------------- list


def test_list_pattern():
    result = cli("list", "resnet1*")
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    names = [name for name, _ in rows]
    assert {"resnet18", "resnet101", "resnet152"} <= set(names)
    assert names == sorted(names)
    assert all(fnmatch.fnmatchcase(name, "resnet1*") for name in names)
    assert dict(rows)["resnet18"] == "resnet"


def test_list_families():
    result = cli("list", "--families", "conv*")
    assert result.exit_code == 0, result.output
    families = dict(line.split("\t") for line in result.stdout.splitlines())
    assert "convnext" in families and int(families["convnext"]) > 10


def test_list_typo_exits_2_with_a_suggestion():
    result = cli("list", "resnett*")
    assert result.exit_code == 2
    assert "matches no timm architecture" in result.stderr
    assert re.search(r"Did you mean: [^?]*resnet", result.stderr), result.stderr


def test_version():
    result = cli("--version")
    assert result.exit_code == 0 and "d2timm-gen, version 0.1.0" in result.stdout


def test_console_script_exit_code():
    """The installed entry point exits 2 from a real process."""
    typo = cli_subprocess("list", "resnett*")
    assert typo.returncode == 2 and "Did you mean" in typo.stderr


# ------------------------------------------------------------------------ generate


def test_generate_typo_suggests_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    result = cli("generate", "resnett50", "--package", "pkg_typo", "--output", out, "--jobs", "1")
    assert result.exit_code == 2
    assert re.search(r"Did you mean: [^?]*\bresnet50\b", result.stderr), result.stderr
    # The selection is resolved before the run lock is taken: nothing at all is created.
    assert not out.exists(), sorted(p.name for p in out.iterdir())


@pytest.mark.parametrize("package", ["Pkg", "pkg-x", "class", "pkg.sub"])
def test_generate_refuses_an_unsafe_package_name(tmp_path, package):
    result = cli("generate", "resnet18", "--package", package, "--output", tmp_path, "--jobs", "1")
    assert result.exit_code == 2 and "unsafe package name" in result.stderr
    assert not (tmp_path / package).exists() and not (tmp_path / "configs").exists()


def test_generate_needs_a_selection_for_a_new_package(tmp_path):
    result = cli("generate", "--package", "pkg_none", "--output", tmp_path)
    assert result.exit_code == 2 and "name at least one PATTERN" in result.output


def test_fresh_generation_layout(small_generation):
    root, pkg = small_generation, small_generation / SMALL_PACKAGE
    for model, family in (("resnet18", "resnet"), ("convnext_atto", "convnext")):
        assert (pkg / family / f"{model}.py").is_file()
        assert (pkg / family / "__init__.py").is_file()
        assert (root / "configs" / family / f"{model}.yaml").is_file()
        assert (root / "configs" / family / f"{model}_fpn.yaml").is_file()
        lazy = (root / "configs" / family / f"{model}_mask_rcnn.py").read_text()
        assert f"from {SMALL_PACKAGE}.{family}.{model} import " in lazy  # the package it was generated into
    # Every runtime template is rendered into the package, and nothing else lands in runtime/.
    runtime_templates = Path(templates.__file__).parent / "package" / "runtime"
    assert {p.name for p in (pkg / "runtime").glob("*.py")} == {t.name[: -len(".j2")] for t in runtime_templates.glob("*.py.j2")}
    assert (root / "configs" / "Base-RCNN-FPN-timm.yaml").is_file()
    manifest = json.loads((pkg / "MANIFEST.json").read_text())
    assert sorted(manifest["models"]) == sorted(SMALL_MODELS)
    assert manifest["selection"]["patterns"] == sorted(SMALL_MODELS) and manifest["selection"]["families"] == []
    assert manifest["package"] == SMALL_PACKAGE and manifest["excluded"] == {}
    # every file the manifest lists exists, and nothing else is in the package
    on_disk = {p.relative_to(root).as_posix() for p in pkg.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert on_disk == set(manifest["files"]) | {f"{SMALL_PACKAGE}/MANIFEST.json"}


def test_second_generate_uses_the_spec_cache(small_copy):
    result = cli("generate", "--package", SMALL_PACKAGE, "--output", small_copy, "--jobs", "1")
    assert result.exit_code == 0, result.output
    line = summary_line(result.stdout)
    assert "2 models generated, 0 excluded (0 introspected, 2 from the manifest cache); 0 files changed" in line


def test_generate_waits_for_the_lock_then_names_it(small_copy):
    lock = small_copy / LOCK_NAME
    with FileLock(str(lock)):
        result = cli("generate", "--package", SMALL_PACKAGE, "--output", small_copy, "--lock-timeout", "0.3")
    assert result.exit_code == 2
    assert f"waiting for lock {lock}" in result.stderr
    assert str(lock) in result.stderr.split("error:")[1] and "gave up after 0.3s" in result.stderr


# --------------------------------------------------------------------------- check


def test_check_on_a_fresh_generation_is_clean(small_generation):
    result = cli("check", "--package", SMALL_PACKAGE, "--output", small_generation, "--jobs", "1")
    assert result.exit_code == 0, result.output
    assert "no drift: the package matches a fresh generation" in result.stdout


def test_check_json_report(small_generation):
    result = cli("check", "--package", SMALL_PACKAGE, "--output", small_generation, "--format", "json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["drift"] is False and payload["changes"] == []
    assert payload["versions"]["generated_with"] == payload["versions"]["installed"]


def test_check_without_a_package_exits_2(tmp_path):
    result = cli("check", "--package", "pkg_missing", "--output", tmp_path)
    assert result.exit_code == 2 and "no generated package" in result.stderr


@pytest.mark.parametrize(
    "args",
    [("generate",), ("generate", "resnet18"), ("check",)],
    ids=["generate-no-pattern", "generate-pattern", "check"],
)
def test_a_manifest_that_is_not_json_exits_2_cleanly_and_writes_nothing(small_copy, args):
    """Every command that reads the manifest gives the same clean message (the console
    script, so a traceback would show on stderr)."""
    from tests.helpers import tree_bytes

    (small_copy / SMALL_PACKAGE / "MANIFEST.json").write_text("{not json", encoding="utf-8")
    before = tree_bytes(small_copy)
    result = cli_subprocess(*args, "--output", small_copy, "--package", SMALL_PACKAGE, "--jobs", "1")
    assert result.returncode == 2, result.stderr
    assert "MANIFEST.json is not valid JSON" in result.stderr and "restore it from version control" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert tree_bytes(small_copy) == before


def test_check_of_the_repository_is_clean():
    """The checked-in package is exactly what the generator renders from its cached specs
    (296 models: about 25 s)."""
    result = cli("check", "--output", ROOT, "--jobs", "1", "--no-diff")
    assert result.exit_code == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert "no drift" in result.stdout


# ---------------------------------------------------------------------------- show


def test_show_resnet50_from_the_repository_manifest():
    result = cli("show", "resnet50", "--output", ROOT)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("resnet50 (family resnet, timm ")
    assert "builders: build_resnet50_backbone, build_resnet50_fpn_backbone" in out
    assert "input 224x224 (any multiple of 32)" in out
    # resnet50 by hand: the stem's act1 at stride 2, then bottleneck stages of 256..2048
    rows = re.findall(r"^\s+(res\d)\s+(\S+)\s+(\d+)\s+(\d+)(\s+\(not default\))?$", out, re.M)
    assert rows == [
        ("res1", "act1", "64", "2", "  (not default)"),
        ("res2", "layer1", "256", "4", ""),
        ("res3", "layer2", "512", "8", ""),
        ("res4", "layer3", "1024", "16", ""),
        ("res5", "layer4", "2048", "32", ""),
    ]
    assert "FPN over res2, res3, res4, res5" in out


def test_show_json():
    result = cli("show", "convnext_atto", "--output", ROOT, "--json")
    spec = json.loads(result.stdout)
    assert spec["facts"]["name"] == "convnext_atto"
    assert [(f["module"], f["channels"], f["stride"]) for f in spec["features"]] == [
        ("stages.0", 40, 4), ("stages.1", 80, 8), ("stages.2", 160, 16), ("stages.3", 320, 32)
    ]  # fmt: skip


def test_show_introspects_a_model_outside_the_package(tmp_path):
    result = cli("show", "resnet18", "--output", tmp_path)
    assert result.exit_code == 0, result.output
    assert "introspected now" in result.stdout
    assert re.search(r"^\s+res5\s+layer4\s+512\s+32$", result.stdout, re.M)


@pytest.mark.parametrize("model, message", [("resnett50", "Did you mean"), ("Resnet50", "unsafe model name")])
def test_show_bad_names_exit_2(tmp_path, model, message):
    result = cli("show", model, "--output", tmp_path)
    assert result.exit_code == 2 and message in result.stderr
