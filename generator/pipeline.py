"""The pipeline, end to end: selection -> plan, with the spec cache. Used by the CLI."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Mapping, Optional, Tuple

from . import __version__
from .discover import Catalog, DiscoveryError, ModelRef, load_catalog, select
from .introspect import Progress, import_plugins, introspect_all
from .plan import (
    Plan,
    Selection,
    build_plan,
    cached_facts,
    formatted_on_disk,
    read_manifest,
    settle_seed_records,
    verification_records,
)
from .spec import FACTS_SCHEMA, ModelFacts, SpecError, make_spec

__all__ = ["Outcome", "plan_package", "tool_versions"]


def tool_versions() -> Dict[str, str]:
    """Versions recorded in the manifest (and only there)."""
    import black
    import jinja2
    import timm
    import torch

    return {
        "black": black.__version__,
        "facts_schema": str(FACTS_SCHEMA),
        "generator": __version__,
        "jinja2": jinja2.__version__,
        "timm": timm.__version__,
        "torch": torch.__version__.split("+")[0],
    }


@dataclass(frozen=True)
class Outcome:
    plan: Plan
    manifest: Optional[Mapping]  # the manifest on disk before this run
    models: int
    excluded: int
    introspected: int
    cached: int
    seconds: float


def plan_package(
    root: Path,
    package: str,
    selection: Selection,
    *,
    jobs: int = 1,
    fresh: bool = False,
    replace: bool = False,
    timeout: float = 300,
    progress: Optional[Progress] = None,
    catalog: Optional[Catalog] = None,
    verified: Optional[Mapping[str, Mapping]] = None,
) -> Outcome:
    """Plan the package at ``root/package`` for ``selection`` (merged with the selection
    already recorded in its manifest unless ``replace``). ``verified``: new real-compute
    results by model (a sweep's ``models``), over those the manifest records."""
    start = time.perf_counter()
    manifest = read_manifest(root, package)
    requested = selection
    recorded = Selection.from_dict(manifest.get("selection", {})) if manifest and not replace else Selection()
    selection = selection.union(recorded)
    if not selection:
        raise SpecError(
            f"nothing selected and no manifest at {Path(root) / package}: name patterns or --family"
        )
    import_plugins(selection.imports)
    catalog = catalog or load_catalog()
    # Names typed now must match (typos are errors); names recorded earlier that timm no
    # longer lists leave their models out of the plan, so `check` reports them REMOVED.
    chosen = set(select(catalog, requested.patterns, requested.families))
    for pattern in recorded.patterns:
        with contextlib.suppress(DiscoveryError):
            chosen.update(select(catalog, [pattern]))
    for family in recorded.families:
        with contextlib.suppress(DiscoveryError):
            chosen.update(select(catalog, families=[family]))
    refs = tuple(sorted(chosen))
    versions = tool_versions()
    cached, cached_excluded = ({}, {}) if fresh else cached_facts(manifest, versions["timm"])
    todo = [ref for ref in refs if ref.name not in cached and ref.name not in cached_excluded]
    facts, failures = introspect_all(todo, jobs=jobs, timeout=timeout, progress=progress, imports=selection.imports)
    specs = []
    excluded: Dict[str, Tuple[str, str]] = {}
    for ref in refs:
        if ref.name in cached_excluded:
            excluded[ref.name] = cached_excluded[ref.name]
            continue
        if ref.name in failures:
            excluded[ref.name] = (ref.family, failures[ref.name])
            continue
        model_facts: ModelFacts = cached.get(ref.name) or facts[ref.name]
        try:
            specs.append(make_spec(model_facts))
        except SpecError as exc:
            excluded[ref.name] = (ref.family, str(exc))
    known = {} if fresh else formatted_on_disk(root, manifest)
    records = verification_records(specs, (manifest or {}).get("verified", {}), verified)
    plan = build_plan(package, selection, specs, excluded, versions, known=known, jobs=jobs, verified=records)
    plan = settle_seed_records(plan, root, manifest)
    return Outcome(
        plan=plan,
        manifest=manifest,
        models=len(specs),
        excluded=len(excluded),
        introspected=len(todo),
        cached=len(refs) - len(todo),
        seconds=time.perf_counter() - start,
    )
