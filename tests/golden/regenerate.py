"""Render the golden specs and (re)write ``tests/golden/expected``.

    python -m tests.golden.regenerate          # rewrite expected/ (what `make goldens` runs)
    python -m tests.golden.regenerate --check  # exit 1 if expected/ is out of date

The inputs are the hand-written :class:`~generator.spec.ModelFacts` in ``specs/``. They
go through the same steps as a real generation minus introspection and the manifest
(whose tool versions would make the goldens change with every black or timm upgrade):
``make_spec`` -> ``render_package`` / ``render_model`` / ``render_seeds`` / ``render_recipe_seed`` /
``render_support`` / ``render_base_configs`` -> ``format_file``. A spec that
``make_spec`` rejects is listed as excluded in ``SUPPORT.md``, as the pipeline does.

Review the diff of ``expected/`` by hand before committing it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Tuple

from generator.formatting import format_file
from generator.render import render_base_configs, render_package, render_recipe_seed, render_seeds, render_support
from generator.tasks import seed_path
from generator.spec import ModelFacts, ModelSpec, SpecError, make_spec

HERE = Path(__file__).resolve().parent
SPECS = HERE / "specs"
EXPECTED = HERE / "expected"

#: Package name of the golden package (paths under expected/ start with it).
PACKAGE = "golden_pkg"
#: Where the YAML seeds go, as in a real generation.
SEED_DIR = "configs"

#: An exclusion the way introspection reports one, with a "|" that SUPPORT.md must escape.
EXTRA_EXCLUDED: Dict[str, Tuple[str, str]] = {
    "toy_nasnet": ("nasnet", "features_only is not supported: KeyError: 'cell_stem_0|cell_0'"),
}


def load_facts() -> Dict[str, ModelFacts]:
    """The hand-written facts, by file stem (``resnet_like``, ...)."""
    facts = {}
    for path in sorted(SPECS.glob("*.json")):
        facts[path.stem] = ModelFacts.from_dict(json.loads(path.read_text(encoding="utf-8")))
    return facts


def specs_and_exclusions() -> Tuple[List[ModelSpec], Dict[str, Tuple[str, str]]]:
    """Specs of the facts ``make_spec`` accepts; the others as (family, reason)."""
    specs: List[ModelSpec] = []
    excluded: Dict[str, Tuple[str, str]] = dict(EXTRA_EXCLUDED)
    for facts in load_facts().values():
        try:
            specs.append(make_spec(facts))
        except SpecError as exc:
            excluded[facts.name] = (facts.family, str(exc))
    return sorted(specs, key=lambda s: s.name), excluded


def render_golden() -> Dict[str, str]:
    """Every golden file, by path relative to ``expected/``."""
    specs, excluded = specs_and_exclusions()
    files: Dict[str, str] = {}
    for path, text in render_package(PACKAGE, specs).items():
        files[f"{PACKAGE}/{path}"] = format_file(path, text)
    files[f"{PACKAGE}/SUPPORT.md"] = format_file("SUPPORT.md", render_support(specs, excluded))
    for name, text in render_base_configs().items():
        files[f"{SEED_DIR}/{name}"] = format_file(name, text)
    for spec in specs:
        for path, text in render_seeds(spec, PACKAGE).items():
            files[f"{SEED_DIR}/{path}"] = format_file(path, text)
        recipe = seed_path(spec, "mask_rcnn_vitdet", "py")
        files[f"{SEED_DIR}/{recipe}"] = format_file(recipe, render_recipe_seed(spec, PACKAGE))
    return dict(sorted(files.items()))


def expected_on_disk() -> Dict[str, str]:
    return {
        path.relative_to(EXPECTED).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(EXPECTED.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def write_expected(files: Dict[str, str]) -> Tuple[List[str], List[str]]:
    """Make ``expected/`` hold exactly ``files``; returns (written, deleted) paths."""
    current = expected_on_disk()
    written, deleted = [], []
    for rel in sorted(set(current) - set(files)):
        (EXPECTED / rel).unlink()
        deleted.append(rel)
    for rel, text in files.items():
        if current.get(rel) != text:
            path = EXPECTED / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
            written.append(rel)
    for directory in sorted((p for p in EXPECTED.rglob("*") if p.is_dir()), reverse=True):
        if not any(directory.iterdir()):
            directory.rmdir()
    return written, deleted


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.golden.regenerate", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report; exit 1 if expected/ is out of date")
    args = parser.parse_args(argv)
    files = render_golden()
    if args.check:
        current = expected_on_disk()
        stale = sorted(p for p in set(files) | set(current) if files.get(p) != current.get(p))
        for path in stale:
            print(f"out of date: tests/golden/expected/{path}")
        return 1 if stale else 0
    written, deleted = write_expected(files)
    for path in written:
        print(f"wrote   tests/golden/expected/{path}")
    for path in deleted:
        print(f"deleted tests/golden/expected/{path}")
    print(f"{len(files)} golden files; {len(written)} written, {len(deleted)} deleted. Review the diff by hand.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
