"""generator.write: the package is swapped in whole, interruptions leave the previous
package in place, ``recover`` undoes a half-done swap, seeds are written atomically and
only where the user did not edit them, and one run at a time holds the lock.

Plans are built from the golden specs (no introspection), except one real CLI flow.
"""

from __future__ import annotations

import os
import shutil

import pytest
from filelock import FileLock

import generator.write
from generator.plan import ADDED, CHANGED, REMOVED, STALE_SEED, Selection, build_plan, compare, read_manifest
from generator.spec import make_spec
from generator.write import LOCK_NAME, LockBusy, locked, recover, write_plan
from tests.helpers import SMALL_PACKAGE, cli, facts_with, golden_facts, summary_line, tree_bytes

PKG = "pkg_write"
VERSIONS = {"black": "golden", "generator": "golden", "timm": "0.0.golden"}


def _plan(*specs):
    return build_plan(PKG, Selection(patterns=("toy_*",)), specs, {}, VERSIONS)


@pytest.fixture(scope="module")
def plan_a():
    """toy_resnet + toy_swin."""
    return _plan(make_spec(golden_facts("resnet_like")), make_spec(golden_facts("swin_like")))


@pytest.fixture(scope="module")
def plan_b():
    """toy_resnet + toy_levit: toy_swin removed, toy_levit added."""
    return _plan(make_spec(golden_facts("resnet_like")), make_spec(golden_facts("levit_like")))


def _write(plan, root):
    with locked(root, timeout=5):
        return write_plan(plan, root, read_manifest(root, PKG))


def _drift(plan, root):
    """What ``check`` would report against ``plan`` (empty: clean)."""
    return compare(plan, root, read_manifest(root, PKG))


def _leftovers(root):
    return sorted(p.name for p in root.iterdir() if p.name.startswith(f".{PKG}."))


def _package(plan):
    prefix = f"{PKG}/"
    return {path[len(prefix) :]: text.encode() for path, text in plan.files.items()}


# ---------------------------------------------------------------------------- writes


def test_first_write_creates_every_file(tmp_path, plan_a):
    changes = _write(plan_a, tmp_path)
    assert {c.kind for c in changes} == {ADDED}
    assert {c.path for c in changes} == set(plan_a.files) | set(plan_a.seeds)
    assert tree_bytes(tmp_path / PKG) == _package(plan_a)
    for path, text in plan_a.seeds.items():
        assert (tmp_path / path).read_text() == text
    assert _drift(plan_a, tmp_path) == [] and _leftovers(tmp_path) == []


def test_seeds_get_the_same_permissions_as_other_files(tmp_path, plan_a):
    """Seeds are the user's config files: readable like every other file (umask),
    not 0600 as a bare tempfile.mkstemp leaves them."""
    _write(plan_a, tmp_path)
    mask = os.umask(0)
    os.umask(mask)
    expected = 0o666 & ~mask
    assert (tmp_path / PKG / "__init__.py").stat().st_mode & 0o777 == expected
    modes = {path: oct((tmp_path / path).stat().st_mode & 0o777) for path in plan_a.seeds}
    assert set(modes.values()) == {oct(expected)}, modes


def test_the_package_is_swapped_in_whole(tmp_path, plan_a, plan_b):
    _write(plan_a, tmp_path)
    before = (tmp_path / PKG).stat().st_ino
    changes = {(c.kind, c.path) for c in _write(plan_b, tmp_path)}
    assert (REMOVED, f"{PKG}/swin_transformer/toy_swin.py") in changes
    assert (ADDED, f"{PKG}/levit/toy_levit.py") in changes
    assert (tmp_path / PKG).stat().st_ino != before  # a new directory, not files patched in place
    assert tree_bytes(tmp_path / PKG) == _package(plan_b)  # toy_swin's module is gone
    assert (tmp_path / "configs" / "swin_transformer" / "toy_swin.yaml").is_file()  # seeds are the user's
    assert _drift(plan_b, tmp_path) == [] and _leftovers(tmp_path) == []


def test_an_unchanged_plan_writes_nothing(tmp_path, plan_a):
    _write(plan_a, tmp_path)
    inode = (tmp_path / PKG).stat().st_ino
    assert _write(plan_a, tmp_path) == []
    assert (tmp_path / PKG).stat().st_ino == inode


def test_edited_seeds_are_kept_and_reported_stale(tmp_path, plan_a):
    _write(plan_a, tmp_path)
    edited_path = tmp_path / "configs" / "resnet" / "toy_resnet_fpn.yaml"
    edited = edited_path.read_text() + "SOLVER:\n  BASE_LR: 0.001\n"
    edited_path.write_text(edited)
    new_mean = make_spec(facts_with(pixel_mean=(0.5, 0.5, 0.5)))
    changes = {(c.kind, c.path) for c in _write(_plan(new_mean, make_spec(golden_facts("swin_like"))), tmp_path)}
    assert (STALE_SEED, "configs/resnet/toy_resnet_fpn.yaml") in changes
    assert (CHANGED, "configs/resnet/toy_resnet.yaml") in changes
    assert edited_path.read_text() == edited
    assert "PIXEL_MEAN: [127.5, 127.5, 127.5]" in (tmp_path / "configs" / "resnet" / "toy_resnet.yaml").read_text()


# ---------------------------------------------------------------------- interruptions


def test_an_interrupted_swap_leaves_the_previous_package(tmp_path, plan_a, plan_b, monkeypatch):
    _write(plan_a, tmp_path)
    previous = tree_bytes(tmp_path / PKG)
    staged = {}

    def interrupted(root, package, staging):
        staged.update(tree_bytes(staging))  # the whole new package was staged first
        raise KeyboardInterrupt

    monkeypatch.setattr(generator.write, "_swap_in", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _write(plan_b, tmp_path)
    assert staged == _package(plan_b)
    assert tree_bytes(tmp_path / PKG) == previous
    assert _drift(plan_a, tmp_path) == []  # `check` is clean: the old package, whole
    monkeypatch.undo()
    _write(plan_b, tmp_path)  # the next run recovers and completes
    assert _drift(plan_b, tmp_path) == [] and _leftovers(tmp_path) == []


def test_an_interrupted_generate_leaves_check_clean(small_copy, monkeypatch):
    """The real flow: `generate --replace resnet18` (drops convnext_atto) dies at the
    swap; the previous package stays whole and `check` still passes."""

    def crashed(root, package, staging):
        raise OSError("simulated crash at the swap")

    monkeypatch.setattr(generator.write, "_swap_in", crashed)
    before = tree_bytes(small_copy / SMALL_PACKAGE)
    args = ("--package", SMALL_PACKAGE, "--output", small_copy, "--jobs", "1")
    result = cli("generate", "--replace", "resnet18", *args)
    assert isinstance(result.exception, OSError), result.output
    assert tree_bytes(small_copy / SMALL_PACKAGE) == before
    monkeypatch.undo()
    check = cli("check", *args)
    assert check.exit_code == 0, check.output
    again = cli("generate", *args)  # the recorded selection still holds both models
    assert again.exit_code == 0 and "2 models generated" in summary_line(again.stdout)
    assert "0 files changed" in summary_line(again.stdout)


def _without_exchange(monkeypatch):
    """Pretend the kernel has no renameat2(RENAME_EXCHANGE): the two-rename path."""
    monkeypatch.setattr(generator.write, "_exchange", lambda a, b: False)


def test_the_two_rename_fallback_swaps_the_package(tmp_path, plan_a, plan_b, monkeypatch):
    _write(plan_a, tmp_path)
    _without_exchange(monkeypatch)
    _write(plan_b, tmp_path)
    assert tree_bytes(tmp_path / PKG) == _package(plan_b)
    assert _drift(plan_b, tmp_path) == [] and _leftovers(tmp_path) == []


def test_recover_restores_a_package_moved_aside(tmp_path, plan_a, plan_b, monkeypatch):
    """Killed between the two renames: the package is moved aside, the new one not yet
    in place. ``recover`` (which every run does first) puts the old one back."""
    _write(plan_a, tmp_path)
    previous = tree_bytes(tmp_path / PKG)
    _without_exchange(monkeypatch)
    real_rename, calls = os.rename, []

    def dies_on_second_rename(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_rename(src, dst)

    monkeypatch.setattr(generator.write.os, "rename", dies_on_second_rename)
    with pytest.raises(KeyboardInterrupt):
        _write(plan_b, tmp_path)
    monkeypatch.undo()
    assert not (tmp_path / PKG).exists()
    assert _leftovers(tmp_path) == [f".{PKG}.previous", f".{PKG}.staging"]
    recover(tmp_path, PKG)
    assert tree_bytes(tmp_path / PKG) == previous
    assert _drift(plan_a, tmp_path) == [] and _leftovers(tmp_path) == []


def test_recover_drops_the_previous_package_once_the_new_one_is_in_place(tmp_path, plan_b):
    _write(plan_b, tmp_path)
    shutil.copytree(tmp_path / PKG, tmp_path / f".{PKG}.previous")
    (tmp_path / f".{PKG}.previous" / "extra.py").write_text("# old\n")
    recover(tmp_path, PKG)
    assert _leftovers(tmp_path) == [] and tree_bytes(tmp_path / PKG) == _package(plan_b)


def test_recover_on_a_clean_directory_does_nothing(tmp_path, plan_a):
    _write(plan_a, tmp_path)
    before = tree_bytes(tmp_path)
    recover(tmp_path, PKG)
    assert tree_bytes(tmp_path) == before


# ------------------------------------------------------------------------------- lock


def test_a_held_lock_makes_a_second_run_fail_naming_the_lock(tmp_path):
    lock_path = tmp_path / LOCK_NAME
    waited = []
    with FileLock(str(lock_path)):
        with pytest.raises(LockBusy) as info:
            with locked(tmp_path, timeout=0.2, on_wait=waited.append):
                pytest.fail("entered a held lock")
    assert str(lock_path) in str(info.value) and "0.2s" in str(info.value)
    assert waited == [lock_path]
    with locked(tmp_path, timeout=0.2):  # free again once released
        pass
