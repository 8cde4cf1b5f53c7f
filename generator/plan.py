"""Plan: every owned file and every YAML seed, in memory, and how the disk differs.

A :class:`Plan` is a pure function of the specs, the exclusions, the selection and the
tool versions. ``generate`` writes it; ``check`` compares it with the disk through
:func:`compare` and never writes.
"""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from .formatting import format_files, source_key
from .names import check_identifier
from .render import EXPORT_COLUMNS, EXPORT_STATUSES, render_base_configs, render_package, render_seeds, render_support, render_task_seed
from .spec import FACTS_SCHEMA, ModelFacts, ModelSpec, SpecError, canonical_json, sha256
from .tasks import parse_request

__all__ = [
    "Change",
    "MANIFEST_NAME",
    "Plan",
    "Selection",
    "build_plan",
    "cached_facts",
    "compare",
    "formatted_on_disk",
    "read_manifest",
    "settle_seed_records",
    "sha256",
    "spec_changes",
    "verification_records",
]

MANIFEST_NAME = "MANIFEST.json"
MANIFEST_SCHEMA = 1
SEED_DIR = "configs"

#: Change kinds, in report order. The first four are drift (``check`` exits 1).
ADDED, REMOVED, CHANGED, HAND_EDITED, STALE_SEED = "ADDED", "REMOVED", "CHANGED", "HAND_EDITED", "STALE_SEED"
DRIFT_KINDS = (ADDED, REMOVED, CHANGED, HAND_EDITED)
KIND_ORDER = (ADDED, REMOVED, CHANGED, HAND_EDITED, STALE_SEED)


@dataclass(frozen=True)
class Selection:
    """What a package was asked to hold: glob patterns over names and whole families."""

    patterns: Tuple[str, ...] = ()
    families: Tuple[str, ...] = ()
    imports: Tuple[str, ...] = ()  # modules that register custom models with timm
    seeds: Tuple[str, ...] = ()  # task seeds asked for with `d2timm-gen seed`: MODEL:TASK:FORMAT

    _FIELDS = ("patterns", "families", "imports", "seeds")

    def __post_init__(self) -> None:
        for name in self._FIELDS:
            object.__setattr__(self, name, tuple(sorted(set(getattr(self, name)))))
        for text in self.seeds:
            parse_request(text)

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[str]]) -> "Selection":
        return cls(*(tuple(data.get(key, ())) for key in cls._FIELDS))

    def union(self, other: "Selection") -> "Selection":
        return Selection(*(getattr(self, key) + getattr(other, key) for key in self._FIELDS))

    def __bool__(self) -> bool:
        return bool(self.patterns or self.families)

    def to_dict(self) -> Dict[str, List[str]]:
        data = {"families": list(self.families), "imports": list(self.imports), "patterns": list(self.patterns)}
        if self.seeds:  # absent when empty: manifests without task seeds read as before
            data["seeds"] = list(self.seeds)
        return data


@dataclass(frozen=True)
class Plan:
    package: str
    files: Mapping[str, str]  # owned files, path relative to the output root -> text
    seeds: Mapping[str, str]  # YAML seeds, path relative to the output root -> default text
    manifest: Mapping

    def model_paths(self, model: str) -> Tuple[str, ...]:
        """The files that belong to one model (its module and its seeds)."""
        spec = self.manifest["models"][model]
        family = spec["facts"]["family"]
        tasks = [
            f"{SEED_DIR}/{family}/{name}_{task}.{fmt}"
            for name, task, fmt in map(parse_request, self.manifest["selection"].get("seeds", ()))
            if name == model and task != "mask_rcnn"
        ]
        return (
            f"{self.package}/{family}/{model}.py",
            f"{SEED_DIR}/{family}/{model}.yaml",
            f"{SEED_DIR}/{family}/{model}_fpn.yaml",
            f"{SEED_DIR}/{family}/{model}_mask_rcnn.py",
            *tasks,
        )


def build_plan(
    package: str,
    selection: Selection,
    specs: Iterable[ModelSpec],
    excluded: Mapping[str, Tuple[str, str]],
    versions: Mapping[str, str],
    *,
    known: Optional[Mapping[str, str]] = None,
    jobs: int = 1,
    verified: Optional[Mapping[str, Mapping[str, str]]] = None,
) -> Plan:
    """Render, format and index every file (pure: no disk access).

    ``verified``: real-compute results by model (:func:`verification_records`), shown
    in SUPPORT.md and recorded in the manifest.

    ``known``: formatted Python texts of an earlier run by source key
    (:func:`formatted_on_disk`), reused instead of formatting again; ``jobs``: processes
    for the rest. Neither changes the result.
    """
    check_identifier(package, "package name")
    specs = sorted(specs, key=lambda s: s.name)
    owned = {f"{package}/{path}": text for path, text in render_package(package, specs).items()}
    verified = {name: dict(record) for name, record in sorted((verified or {}).items())}
    owned[f"{package}/SUPPORT.md"] = render_support(specs, excluded, verified)
    seeded = {f"{SEED_DIR}/{name}": text for name, text in render_base_configs().items()}
    by_name = {spec.name: spec for spec in specs}
    for spec in specs:
        seeded.update((f"{SEED_DIR}/{path}", text) for path, text in render_seeds(spec, package).items())
    for text in selection.seeds:  # a model no longer generated takes its task seeds with it
        model, task, fmt = parse_request(text)
        if model in by_name:
            rendered = render_task_seed(by_name[model], task, fmt, package)
            seeded.update((f"{SEED_DIR}/{path}", text) for path, text in rendered.items())
    formatted = format_files({**owned, **seeded}, known, jobs)
    files = {path: formatted[path] for path in sorted(owned)}
    seeds = {path: formatted[path] for path in sorted(seeded)}
    manifest = {
        "schema": MANIFEST_SCHEMA,
        "package": package,
        "versions": dict(sorted(versions.items())),
        "selection": selection.to_dict(),
        "files": {path: sha256(text) for path, text in sorted(files.items())},
        "seeds": {path: sha256(text) for path, text in sorted(seeds.items())},
        # what each Python file was formatted from (formatting.source_key): lets the
        # next run reuse the file instead of running black on the same text again
        "sources": {
            path: source_key(text) for path, text in sorted({**owned, **seeded}.items()) if path.endswith(".py")
        },
        "models": {spec.name: spec.to_dict() for spec in specs},
        "excluded": {name: {"family": family, "reason": reason} for name, (family, reason) in sorted(excluded.items())},
        "verified": verified,
    }
    files[f"{package}/{MANIFEST_NAME}"] = canonical_json(manifest)
    return Plan(package=package, files=files, seeds=seeds, manifest=manifest)


#: What a real-compute sweep (tools/dev/sweep.py) says of a model.
VERIFICATION_STATUSES = ("verified", "failed", "not run")


def verification_records(
    specs: Iterable[ModelSpec], recorded: Mapping[str, Mapping], results: Optional[Mapping[str, Mapping]] = None
) -> Dict[str, Dict[str, str]]:
    """Real-compute results for the models of ``specs``: new ``results`` (a sweep's
    ``models``) over those ``recorded`` in the manifest, each kept only while the spec it
    was measured with (``spec``, its digest) is the model's current one. A result without
    export columns (a ``--no-export`` sweep) keeps the columns recorded for the same spec."""
    from .names import safe_text

    digests = {spec.name: spec.digest() for spec in specs}
    records: Dict[str, Dict[str, str]] = {}
    for name, record in recorded.items():
        if digests.get(name) and record.get("spec") == digests[name] and record.get("status") in VERIFICATION_STATUSES:
            records[name] = dict(record)
    for name, result in (results or {}).items():
        status = result.get("status")
        if name not in digests:
            continue
        if status not in VERIFICATION_STATUSES:
            raise SpecError(f"verification of {name}: status {status!r} is not one of {VERIFICATION_STATUSES}")
        previous = records.get(name, {})
        records[name] = {
            "status": status,
            "reason": safe_text(result.get("reason", ""), limit=200),
            "spec": digests[name],
            "timm": str(result.get("timm", "")),
        }
        side = result.get("img_size", 0)
        if isinstance(side, bool) or not isinstance(side, int) or side < 0:
            raise SpecError(f"verification of {name}: img_size {side!r} is not a side in pixels")
        if side:
            records[name]["img_size"] = side
        if result.get("export"):
            records[name]["export"] = _export_record(name, result["export"])
        elif previous.get("export"):
            records[name]["export"] = previous["export"]
    return dict(sorted(records.items()))


def _export_record(name: str, columns: Mapping[str, Mapping]) -> Dict[str, Dict[str, str]]:
    """A sweep's export columns of one model, checked and made safe text."""
    from .names import safe_text

    record = {}
    for column in EXPORT_COLUMNS:
        cell = columns.get(column)
        if cell is None:
            continue
        if cell.get("status") not in EXPORT_STATUSES:
            raise SpecError(f"export of {name} ({column}): status {cell.get('status')!r} is not one of {EXPORT_STATUSES}")
        record[column] = {"status": cell["status"], "reason": safe_text(cell.get("reason", ""), limit=200)}
    unknown = sorted(set(columns) - set(EXPORT_COLUMNS))
    if unknown:
        raise SpecError(f"export of {name}: unknown column {unknown[0]!r}; valid: {', '.join(EXPORT_COLUMNS)}")
    return record


def formatted_on_disk(root: Path, manifest: Optional[Mapping]) -> Dict[str, str]:
    """Formatted Python files the generator wrote before (package modules and LazyConfig
    seeds), by the source key they were formatted from, for the files that are still
    exactly what it wrote (a hand-edited file is never reused: its hash differs from the
    manifest's)."""
    recorded: Mapping[str, str] = {**(manifest or {}).get("files", {}), **(manifest or {}).get("seeds", {})}
    known: Dict[str, str] = {}
    for path, key in (manifest or {}).get("sources", {}).items():
        text = _read(Path(root) / path)
        if text is not None and recorded.get(path) == sha256(text):
            known[key] = text
    return known


def settle_seed_records(plan: Plan, root: Path, manifest: Optional[Mapping]) -> Plan:
    """For a seed the user edited, keep recording the default it was seeded from rather
    than the new default: ``check`` then reports it STALE_SEED (with the new default as a
    diff) until the user's file equals the new default. Generate and check both call this
    with the manifest on disk, so they agree on the manifest's text."""
    recorded: Mapping[str, str] = (manifest or {}).get("seeds", {})
    seeds = dict(plan.manifest["seeds"])
    for path in plan.seeds:
        old = _read(Path(root) / path)
        edited = old is not None and old != plan.seeds[path] and sha256(old) != recorded.get(path)
        if path in recorded and edited:
            seeds[path] = recorded[path]
    if seeds == plan.manifest["seeds"]:
        return plan
    settled = {**plan.manifest, "seeds": seeds}
    files = {**plan.files, f"{plan.package}/{MANIFEST_NAME}": canonical_json(settled)}
    return Plan(package=plan.package, files=files, seeds=plan.seeds, manifest=settled)


def read_manifest(root: Path, package: str) -> Optional[dict]:
    path = Path(root) / package / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise SpecError(f"{path} is not valid JSON ({exc}); restore it from version control") from None
    if manifest.get("schema") != MANIFEST_SCHEMA:
        raise SpecError(f"{path} has manifest schema {manifest.get('schema')!r}; this d2timm-gen reads {MANIFEST_SCHEMA}")
    return manifest


def cached_facts(
    manifest: Optional[Mapping], timm_version: str
) -> Tuple[Dict[str, ModelFacts], Dict[str, Tuple[str, str]]]:
    """Facts and exclusions a manifest holds, if they were measured with this timm and
    this facts schema; otherwise nothing (everything is introspected again)."""
    if not manifest:
        return {}, {}
    versions = manifest.get("versions", {})
    if versions.get("timm") != timm_version or versions.get("facts_schema") != str(FACTS_SCHEMA):
        return {}, {}
    facts = {name: ModelFacts.from_dict(spec["facts"]) for name, spec in manifest.get("models", {}).items()}
    excluded = {name: (e["family"], e["reason"]) for name, e in manifest.get("excluded", {}).items()}
    return facts, excluded


@dataclass(frozen=True)
class Change:
    kind: str
    path: str
    old: Optional[str] = field(default=None, repr=False)  # text on disk
    new: Optional[str] = field(default=None, repr=False)  # text of a fresh generation

    def diff(self) -> str:
        old = (self.old or "").splitlines(keepends=True)
        new = (self.new or "").splitlines(keepends=True)
        return "".join(difflib.unified_diff(old, new, f"a/{self.path}", f"b/{self.path}"))


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        return path.read_bytes().decode("utf-8", errors="replace")


def _package_files_on_disk(root: Path, package: str) -> List[str]:
    base = root / package
    found = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in filenames:
            if name.endswith((".pyc", ".pyo")):
                continue
            found.append((Path(dirpath) / name).relative_to(root).as_posix())
    return sorted(found)


def compare(plan: Plan, root: Path, manifest: Optional[Mapping], only: Optional[Sequence[str]] = None) -> List[Change]:
    """How the disk under ``root`` differs from ``plan``.

    ADDED: planned, not on disk. REMOVED: generated before, no longer planned.
    CHANGED: the generator's output changed (the disk still holds what it wrote last).
    HAND_EDITED: a generated file differs from what the generator wrote, or a file in the
    package that it never wrote. STALE_SEED: a YAML seed the user edited whose generated
    default changed (reported, never overwritten). ``only`` limits the report to paths.
    """
    root = Path(root)
    recorded: Mapping[str, str] = (manifest or {}).get("files", {})
    recorded_seeds: Mapping[str, str] = (manifest or {}).get("seeds", {})
    manifest_path = f"{plan.package}/{MANIFEST_NAME}"
    changes: List[Change] = []
    for path in sorted(set(plan.files) | set(recorded) | set(_package_files_on_disk(root, plan.package))):
        new = plan.files.get(path)
        old = _read(root / path)
        if old == new:
            continue
        if old is None:
            changes.append(Change(ADDED, path, None, new))
        elif new is None:
            kind = REMOVED if path in recorded and sha256(old) == recorded[path] else HAND_EDITED
            changes.append(Change(kind, path, old, None))
        elif path == manifest_path or recorded.get(path) == sha256(old):
            changes.append(Change(CHANGED, path, old, new))
        else:
            changes.append(Change(HAND_EDITED, path, old, new))
    for path, new in plan.seeds.items():
        old = _read(root / path)
        if old == new:
            continue
        if old is None:
            changes.append(Change(ADDED, path, None, new))
        elif recorded_seeds.get(path) == sha256(old):
            changes.append(Change(CHANGED, path, old, new))  # untouched seed: safe to update
        elif path in recorded_seeds and recorded_seeds[path] != sha256(new):
            changes.append(Change(STALE_SEED, path, old, new))
        # otherwise the user edited the seed and its default did not change: theirs.
    if only is not None:
        keep = set(only)
        changes = [c for c in changes if c.path in keep]
    return sorted(changes, key=lambda c: (KIND_ORDER.index(c.kind), c.path))


#: Spec fields that describe the environment, not the model: never reported as drift.
_NOT_A_FACT = ("facts.timm_version",)


def _flatten(value, prefix: str = "") -> Dict[str, object]:
    if isinstance(value, Mapping):
        out: Dict[str, object] = {}
        for key in sorted(value):
            out.update(_flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, (list, tuple)) and any(isinstance(v, Mapping) for v in value):
        out = {}
        for i, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}[{i}]"))
        return out
    return {prefix: _as_json(value)}


def _as_json(value):
    """Tuples (nested too) as lists: a fresh spec and one read back from JSON compare equal."""
    return [_as_json(v) for v in value] if isinstance(value, (list, tuple)) else value


def spec_changes(old: Optional[Mapping], new: Mapping) -> Dict[str, List[str]]:
    """Per model, which spec fields changed between two manifests (``old -> new``).

    Added and removed models, and models that became excluded or included, are
    reported too. Pure: works on the manifests' JSON.
    """
    old_models: Mapping = (old or {}).get("models", {})
    new_models: Mapping = new.get("models", {})
    old_excluded: Mapping = (old or {}).get("excluded", {})
    new_excluded: Mapping = new.get("excluded", {})
    report: Dict[str, List[str]] = {}
    for name in sorted(set(old_models) | set(new_models) | set(old_excluded) | set(new_excluded)):
        if name in old_models and name in new_models:
            before, after = _flatten(old_models[name]), _flatten(new_models[name])
            lines = [
                f"{key}: {before.get(key, '(none)')} -> {after.get(key, '(none)')}"
                for key in sorted(set(before) | set(after))
                if before.get(key) != after.get(key) and key not in _NOT_A_FACT
            ]
        elif name in new_models:
            was = f" (was excluded: {old_excluded[name]['reason']})" if name in old_excluded else ""
            lines = [f"new model{was}"]
        elif name in old_models:
            why = f"now excluded: {new_excluded[name]['reason']}" if name in new_excluded else "no longer listed by timm"
            lines = [f"removed: {why}"]
        elif name in old_excluded and name in new_excluded:
            before, after = old_excluded[name]["reason"], new_excluded[name]["reason"]
            lines = [f"excluded reason: {before} -> {after}"] if before != after else []
        else:
            lines = ["newly excluded: " + new_excluded[name]["reason"]] if name in new_excluded else ["no longer listed by timm"]
        if lines:
            report[name] = lines
    return report
