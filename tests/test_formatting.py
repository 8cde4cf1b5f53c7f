"""generator.formatting: black's output is reused only for the same rendered text, the
same black and the same mode, and only from files nobody edited; formatting in worker
processes gives the same files as in one."""

from __future__ import annotations

import json

import pytest

import generator.formatting
from generator.formatting import FormatError, format_file, format_files, source_key
from generator.plan import HAND_EDITED, Selection, build_plan, compare, formatted_on_disk, read_manifest
from generator.spec import make_spec
from generator.write import locked, write_plan
from tests.helpers import golden_facts

PKG = "pkg_fmt"
VERSIONS = {"black": "golden", "generator": "golden", "timm": "0.0.golden"}
STEMS = ("resnet_like", "swin_like", "levit_like")


def _plan(known=None, jobs=1):
    specs = [make_spec(golden_facts(stem)) for stem in STEMS]
    return build_plan(PKG, Selection(patterns=("toy_*",)), specs, {}, VERSIONS, known=known, jobs=jobs)


@pytest.fixture(scope="module")
def plan():
    return _plan()


def _written(plan, root):
    with locked(root, timeout=5):
        write_plan(plan, root, read_manifest(root, PKG))
    return read_manifest(root, PKG)


def test_a_known_source_key_is_reused_instead_of_formatted():
    text = "x=( 1,2 )\n"
    assert format_files({"a.py": text}) == {"a.py": "x = (1, 2)\n"}
    # the cache is trusted for its key: what it holds is what comes back
    assert format_files({"a.py": text}, known={source_key(text): "x = (1, 2)  # kept\n"}) == {
        "a.py": "x = (1, 2)  # kept\n"
    }
    # another text, another key: formatted afresh
    assert format_files({"a.py": "y=1\n"}, known={source_key(text): "unused\n"}) == {"a.py": "y = 1\n"}


def test_the_key_depends_on_black_and_its_mode(monkeypatch):
    before = source_key("x = 1\n")
    assert source_key("x = 1\n") == before and source_key("x = 2\n") != before
    monkeypatch.setattr(generator.formatting, "FORMATTER", generator.formatting.FORMATTER + " other")
    assert source_key("x = 1\n") != before


def test_invalid_output_fails_in_worker_processes_too():
    rendered = {f"m{i:03d}.py": f"value_{i} = {i}\n" for i in range(generator.formatting._PARALLEL_MIN)}
    rendered["m999.py"] = "def broken(:\n"
    with pytest.raises(FormatError, match="m999.py"):
        format_files(rendered, jobs=2)


def test_worker_processes_format_exactly_as_one_process():
    rendered = {f"m{i:03d}.py": f"def f_{i}( a,b ):\n  return {{'k':a+b*{i}}}\n" for i in range(80)}
    rendered["seed.yaml"] = "A: [1, 2]"
    one = format_files(rendered, jobs=1)
    assert format_files(rendered, jobs=2) == one
    assert list(one) == sorted(rendered)
    assert one["m007.py"] == format_file("m007.py", rendered["m007.py"])
    assert one["seed.yaml"] == "A: [1, 2]\n"


def test_the_manifest_records_what_each_python_file_was_formatted_from(plan):
    sources = plan.manifest["sources"]
    python = sorted(p for p in {**plan.files, **plan.seeds} if p.endswith(".py"))  # modules and LazyConfig seeds
    assert sorted(sources) == python and any(p.startswith("configs/") for p in python)
    assert all(len(key) == 64 for key in sources.values())
    assert len(set(sources.values())) == len(sources)  # every module renders to its own text


def test_a_regeneration_reuses_every_unedited_file_and_equals_a_fresh_one(tmp_path, plan, monkeypatch):
    manifest = _written(plan, tmp_path)
    known = formatted_on_disk(tmp_path, manifest)
    assert len(known) == len(plan.manifest["sources"])

    def no_black(text, path):
        raise AssertionError(f"{path} formatted again")

    monkeypatch.setattr(generator.formatting, "format_python", no_black)
    again = _plan(known=known)
    assert again == plan
    assert compare(again, tmp_path, manifest) == []


def test_a_hand_edited_file_is_never_reused(tmp_path, plan):
    manifest = _written(plan, tmp_path)
    module = next(p for p in sorted(plan.manifest["sources"]) if "toy_" in p and p in plan.files)
    (tmp_path / module).write_text(plan.files[module] + "# mine\n", encoding="utf-8")
    known = formatted_on_disk(tmp_path, manifest)
    assert manifest["sources"][module] not in known
    assert len(known) == len(manifest["sources"]) - 1
    again = _plan(known=known)
    assert again.files[module] == plan.files[module]
    assert [(c.kind, c.path) for c in compare(again, tmp_path, manifest)] == [(HAND_EDITED, module)]


def test_an_edited_lazyconfig_seed_is_never_reused_and_stays_the_users(tmp_path, plan):
    manifest = _written(plan, tmp_path)
    seed = next(p for p in sorted(plan.seeds) if p.endswith("_mask_rcnn.py"))
    (tmp_path / seed).write_text(plan.seeds[seed] + "train.max_iter = 10\n", encoding="utf-8")
    known = formatted_on_disk(tmp_path, manifest)
    assert manifest["sources"][seed] not in known
    again = _plan(known=known)
    assert again.seeds[seed] == plan.seeds[seed]
    assert compare(again, tmp_path, manifest) == []  # the user's edit, its default unchanged


def test_a_manifest_without_sources_reuses_nothing(tmp_path, plan):
    manifest = _written(plan, tmp_path)
    del manifest["sources"]
    assert formatted_on_disk(tmp_path, json.loads(json.dumps(manifest))) == {}
