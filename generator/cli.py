"""``d2timm-gen``: list, generate, check and show generated detectron2 backbones.

Exit codes: 0 success (``check``: no drift), 1 drift (``check`` only), 2 error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional, Sequence

import click

from . import __version__
from .compat import timm_gate
from .discover import DiscoveryError, load_catalog, select
from .formatting import FormatError
from .introspect import IntrospectionError, default_jobs, import_plugins
from .names import UnsafeNameError, check_identifier
from .pipeline import Outcome, plan_package
from .plan import DRIFT_KINDS, STALE_SEED, Change, Selection, compare, read_manifest, spec_changes
from .spec import SpecError, make_spec
from .tasks import FORMATS, TASKS, check_model_takes, check_request, seed_file
from .write import LockBusy, locked, write_plan

EXIT_OK, EXIT_DRIFT, EXIT_ERROR = 0, 1, 2
USER_ERRORS = (DiscoveryError, UnsafeNameError, SpecError, FormatError, LockBusy, IntrospectionError)


def _fail(message: str) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(EXIT_ERROR)


def _progress(done: int, total: int, name: str, reason: Optional[str]) -> None:
    width = len(str(total))
    status = "ok" if reason is None else f"excluded: {reason}"
    click.echo(f"[{done:>{width}}/{total}] {name}: {status}", err=True)


def _package_option(fn):
    fn = click.option(
        "--package",
        default="generated",
        show_default=True,
        help="Name of the generated Python package (a directory under --output).",
    )(fn)
    fn = click.option(
        "--output",
        "-o",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("."),
        show_default=True,
        help="Root directory: the package goes to OUTPUT/PACKAGE, YAML seeds to OUTPUT/configs.",
    )(fn)
    return fn


def _jobs_option(fn):
    fn = click.option(
        "--timeout",
        type=click.FloatRange(min=1),
        default=300,
        show_default=True,
        help="Seconds one model may take to introspect before it is recorded as failed.",
    )(fn)
    fn = click.option(
        "--fresh", is_flag=True, help="Introspect every model again, ignoring the specs cached in the manifest."
    )(fn)
    return click.option(
        "--jobs",
        "-j",
        type=click.IntRange(min=1),
        default=default_jobs,
        show_default="CPU count",
        help="Worker processes for introspection.",
    )(fn)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="d2timm-gen")
def main() -> None:
    """Generate explicit detectron2 backbones (plain and FPN) from timm models.

    \b
    d2timm-gen list 'resnet*'              architectures timm lists
    d2timm-gen generate --family convnext  generate (and register) a family
    d2timm-gen check                       exit 1 if the package drifted
    d2timm-gen show resnet50               every fact about one model
    """
    error, warning = timm_gate()  # before anything imports timm: exit 2 outside the supported range
    if warning:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    if error:
        _fail(error)


@main.command("list")
@click.argument("pattern", required=False, default="*")
@click.option("--families", is_flag=True, help="List families (timm modules) with their model counts.")
def list_command(pattern: str, families: bool) -> None:
    """List timm architectures matching PATTERN (a glob; default all)."""
    catalog = load_catalog()
    try:
        if families:
            import fnmatch

            rows = [(f, len(m)) for f, m in catalog.families.items() if fnmatch.fnmatchcase(f, pattern)]
            if not rows:
                raise DiscoveryError(f"pattern {pattern!r} matches no family")
            for family, count in rows:
                click.echo(f"{family}\t{count}")
            return
        for ref in select(catalog, patterns=[pattern]):
            click.echo(f"{ref.name}\t{ref.family}")
    except DiscoveryError as exc:
        _fail(str(exc))
    for name, reason in catalog.unsafe:
        click.secho(f"warning: timm lists {name!r}, which cannot be generated: {reason}", fg="yellow", err=True)


def _plan(output: Path, package: str, selection: Selection, **kwargs) -> Outcome:
    check_identifier(package, "package name")
    return plan_package(output, package, selection, progress=_progress, **kwargs)


@main.command()
@click.argument("patterns", nargs=-1)
@click.option("--family", "-f", "families", multiple=True, help="A timm family (model module); repeatable.")
@_package_option
@_jobs_option
@click.option(
    "--import",
    "imports",
    multiple=True,
    help="A module to import first (in every worker too) that registers custom models with timm; repeatable.",
)
@click.option("--replace", is_flag=True, help="Forget the selection recorded in the manifest; keep only this one.")
@click.option("--lock-timeout", type=float, default=600, show_default=True, help="Seconds to wait for another run.")
@click.option(
    "--verified",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    multiple=True,
    help="Results of tools/dev/sweep.py (JSON) to record in the manifest and show in SUPPORT.md; "
    "repeatable (one per --shard), each model in one file at most.",
)
def generate(patterns, families, output, package, jobs, fresh, timeout, imports, replace, lock_timeout, verified) -> None:
    """Generate backbones for PATTERNS (globs over model names) and --family names.

    The selection adds to the one already recorded in OUTPUT/PACKAGE/MANIFEST.json.
    Specs measured with the same timm are reused from the manifest. Edited YAML seeds
    are never overwritten.
    """
    try:
        if not patterns and not families and read_manifest(output, package) is None:
            raise click.UsageError("name at least one PATTERN or --family (no package to regenerate yet)")
        # Resolve the selection before taking the lock: a typo exits 2 having written nothing.
        import_plugins(imports)
        catalog = load_catalog()
        select(catalog, patterns, families)
        results = _read_sweeps(verified) if verified else None
        with locked(output, lock_timeout, on_wait=lambda p: click.echo(f"waiting for lock {p} ...", err=True)):
            selection = Selection(tuple(patterns), tuple(families), tuple(imports))
            outcome = _plan(
                output,
                package,
                selection,
                jobs=jobs,
                fresh=fresh,
                timeout=timeout,
                replace=replace,
                catalog=catalog,
                verified=results,
            )
            changes = write_plan(outcome.plan, output, outcome.manifest)
    except USER_ERRORS as exc:
        _fail(str(exc))
    for change in changes:
        if change.kind == STALE_SEED:
            click.secho(
                f"{STALE_SEED} {change.path}: you edited it and its generated default changed; "
                "kept yours (see `d2timm-gen check` for the new default)",
                fg="yellow",
                err=True,
            )
    written = [c for c in changes if c.kind != STALE_SEED]
    click.echo(
        f"{outcome.models} models generated, {outcome.excluded} excluded "
        f"({outcome.introspected} introspected, {outcome.cached} from the manifest cache); "
        f"{len(written)} files changed under {output} in {outcome.seconds:.1f}s"
    )


def _read_sweeps(paths: Sequence[Path]) -> dict:
    """The ``models`` of several sweep results files (shards): SpecError for a model in two."""
    merged: dict = {}
    source: dict = {}
    for path in paths:
        for name, result in _read_sweep(path).items():
            if name in merged:
                raise SpecError(f"--verified: {name} is in both {source[name]} and {path}; pass each model's results once")
            merged[name], source[name] = result, path
    return merged


def _read_sweep(path: Path) -> dict:
    """The ``models`` of a tools/dev/sweep.py results file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise SpecError(f"--verified {path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise SpecError(f"--verified {path} is not a tools/dev/sweep.py results file (no 'models' mapping)")
    return data["models"]


def _report(changes: List[Change], outcome: Outcome, as_json: bool, diffs: bool, models=None) -> None:
    drift = [c for c in changes if c.kind in DRIFT_KINDS]
    specs = spec_changes(outcome.manifest, outcome.plan.manifest)
    if models is not None:
        specs = {name: lines for name, lines in specs.items() if name in models}
    if as_json:
        payload = {
            "drift": bool(drift),
            "models": specs,
            "versions": {
                "generated_with": (outcome.manifest or {}).get("versions", {}),
                "installed": outcome.plan.manifest["versions"],
            },
            "changes": [{"kind": c.kind, "path": c.path, "diff": c.diff() if diffs else None} for c in changes],
        }
        click.echo(json.dumps(payload, indent=1, sort_keys=True))
        return
    old = (outcome.manifest or {}).get("versions", {})
    new = outcome.plan.manifest["versions"]
    click.echo(f"generated with timm {old.get('timm', '?')}; installed timm {new['timm']}")
    for name, lines in specs.items():
        click.echo(f"MODEL {name}")
        for line in lines:
            click.echo(f"    {line}")
    for change in changes:
        click.echo(f"{change.kind} {change.path}")
    if diffs:
        for change in changes:
            if change.kind != "ADDED" and change.path.endswith((".py", ".yaml", ".md")):
                click.echo(change.diff(), nl=False)
    click.echo(
        f"{len(drift)} files drifted" + (f", {len(changes) - len(drift)} stale seeds" if len(changes) > len(drift) else "")
        if changes
        else "no drift: the package matches a fresh generation"
    )


@main.command()
@click.argument("patterns", nargs=-1)
@_package_option
@_jobs_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--diff/--no-diff", default=True, show_default=True, help="Print unified diffs.")
def check(patterns, output, package, jobs, fresh, timeout, fmt, diff) -> None:
    """Compare the package with a fresh generation; never writes.

    Exit 0: no drift. 1: drift (ADDED, REMOVED, CHANGED, HAND_EDITED lines and diffs).
    2: error. With PATTERNS, only those models' files are compared.
    """
    try:
        manifest = read_manifest(output, package)
        if manifest is None:
            raise SpecError(f"no generated package at {output / package} (no {package}/MANIFEST.json); run generate")
        import_plugins(Selection.from_dict(manifest.get("selection", {})).imports)
        catalog = load_catalog()
        models = {ref.name for ref in select(catalog, patterns)} if patterns else None
        outcome = _plan(output, package, Selection(), jobs=jobs, fresh=fresh, timeout=timeout, catalog=catalog)
        only = None
        if models is not None:
            only = [p for name in sorted(models) if name in outcome.plan.manifest["models"] for p in outcome.plan.model_paths(name)]
        changes = compare(outcome.plan, output, manifest, only=only)
    except USER_ERRORS as exc:
        _fail(str(exc))
    _report(changes, outcome, fmt == "json", diff, models)
    sys.exit(EXIT_DRIFT if any(c.kind in DRIFT_KINDS for c in changes) else EXIT_OK)


def _task_listing() -> str:
    rows = []
    for name, task in sorted(TASKS.items()):
        zoo = " and ".join(path for path in (task.zoo_yaml, task.zoo_py) if path)
        rows.append(f"{name:<18} {task.summary} [{', '.join(task.formats)}] (zoo: {zoo})")
    return "\n".join(rows)


@main.command()
@click.argument("models", nargs=-1)
@click.option("--task", "-t", "tasks", multiple=True, help="A detectron2 task (see --list); repeatable.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="A YAML config (tools/train_net.py, detectron2's DefaultTrainer) or a LazyConfig "
    "[default: yaml, or a task's only format].",
)
@_package_option
@click.option("--list", "list_tasks", is_flag=True, help="List the tasks and exit.")
@click.option("--lock-timeout", type=float, default=600, show_default=True, help="Seconds to wait for another run.")
def seed(models, tasks, fmt, output, package, list_tasks, lock_timeout) -> None:
    """Write a user-owned config for each MODEL and detectron2 --task, after detectron2's
    own model-zoo config for the task, to OUTPUT/configs/<family>/<model>_<task>.<format>.

    Each MODEL must be generated in OUTPUT/PACKAGE. The request is recorded in the
    manifest: regeneration keeps the seed, never overwrites it once edited, and `check`
    reports it STALE_SEED when its default changes. Nothing is written when a model or a
    task is unknown.
    """
    if list_tasks:
        click.echo(_task_listing())
        return
    try:
        if not models or not tasks:
            raise click.UsageError(f"name a MODEL and a --task; the tasks:\n{_task_listing()}")
        for task in tasks:  # the task and format first: a typo lists the valid ones
            check_request("model", task, _seed_format(task, fmt))
        manifest = read_manifest(output, package)
        if manifest is None:
            raise SpecError(f"no generated package at {output / package} (no {package}/MANIFEST.json); run generate first")
        for model in models:
            _check_generated(model, manifest, package)
            for task in tasks:
                check_model_takes(manifest["models"][model]["facts"].get("output_strides", ()), model, task)
        import_plugins(Selection.from_dict(manifest.get("selection", {})).imports)
        # Mask R-CNN's seeds are written for every model: nothing to record.
        requests = tuple(check_request(m, t, _seed_format(t, fmt)) for m in models for t in tasks if t != "mask_rcnn")
        with locked(output, lock_timeout, on_wait=lambda p: click.echo(f"waiting for lock {p} ...", err=True)):
            outcome = _plan(output, package, Selection(seeds=requests))
            changes = {c.path: c.kind for c in write_plan(outcome.plan, output, outcome.manifest)}
    except USER_ERRORS as exc:
        _fail(str(exc))
    for model in models:
        for task in tasks:
            task_fmt = _seed_format(task, fmt)
            relative = f"configs/{seed_file(manifest['models'][model]['facts']['family'], model, task, task_fmt)}"
            zoo = TASKS[task].zoo_yaml if task_fmt == "yaml" else TASKS[task].zoo_py
            status = changes.get(relative)
            if status == STALE_SEED:
                click.secho(f"{STALE_SEED} {output / relative}: you edited it and its default changed; kept yours", fg="yellow", err=True)
            else:
                done = "already seeded, unchanged" if status is None else "written"
                click.echo(f"{output / relative}: {done} ({TASKS[task].summary}, after detectron2's {zoo})")


def _seed_format(task: str, fmt: Optional[str]) -> str:
    """``--format``, or without it YAML where the task has a YAML seed, else its only one."""
    if fmt is not None or task not in TASKS:
        return fmt or "yaml"
    return "yaml" if "yaml" in TASKS[task].formats else TASKS[task].formats[0]


def _check_generated(model: str, manifest, package: str) -> None:
    check_identifier(model)
    generated = manifest.get("models", {})
    if model in generated:
        return
    if model in manifest.get("excluded", {}):
        raise SpecError(f"{model} is excluded from {package}: {manifest['excluded'][model]['reason']}")
    import difflib

    close = difflib.get_close_matches(model, sorted(generated), n=5, cutoff=0.6)
    hint = f"; did you mean: {', '.join(close)}?" if close else ""
    raise SpecError(
        f"unknown model {model!r}: not one of the {len(generated)} models of {package} "
        f"(`d2timm-gen list` lists timm's; `d2timm-gen generate {model}` adds one){hint}"
    )


@main.command()
@click.argument("model")
@_package_option
@click.option("--json", "as_json", is_flag=True, help="Print the spec as JSON.")
def show(model, output, package, as_json) -> None:
    """Every fact about MODEL: from the package's manifest, or introspected now."""
    try:
        check_identifier(model)
        manifest = read_manifest(output, package) or {}
        if model in manifest.get("models", {}):
            spec_dict, source = manifest["models"][model], f"{output / package}/MANIFEST.json"
        elif model in manifest.get("excluded", {}):
            _fail(f"{model} is excluded from {package}: {manifest['excluded'][model]['reason']}")
        else:
            refs = select(load_catalog(), [model])
            from .introspect import introspect

            spec_dict, source = make_spec(introspect(refs[0].name, refs[0].family)).to_dict(), "introspected now"
    except USER_ERRORS as exc:
        _fail(str(exc))
    if as_json:
        click.echo(json.dumps(spec_dict, indent=1, sort_keys=True))
        return
    facts = spec_dict["facts"]
    click.echo(f"{model} (family {facts['family']}, timm {facts['timm_version']}; {source})")
    click.echo(f"  builders: build_{model}_backbone, build_{model}_fpn_backbone")
    click.echo(f"  timm wrapper {facts['feature_class']}, output {facts['layout']}")
    fixed = "fixed" if facts["fixed_input_size"] else f"any multiple of {spec_dict['size_divisibility']}"
    click.echo(f"  input {facts['input_size'][1]}x{facts['input_size'][2]} ({fixed})")
    click.echo(f"  pixel mean {facts['pixel_mean']} std {facts['pixel_std']} (RGB, 0..1)")
    click.echo(f"  {'feature':<10} {'timm module':<22} {'channels':>8} {'stride':>6}")
    for f in spec_dict["features"]:
        mark = "" if f["name"] in spec_dict["out_features"] else "  (not default)"
        click.echo(f"  {f['name']:<10} {f['module']:<22} {f['channels']:>8} {f['stride']:>6}{mark}")
    click.echo(f"  FPN over {', '.join(spec_dict['fpn_in_features'])}")
    dilated = facts.get("output_strides", [])
    click.echo(f"  output strides (MODEL.BACKBONE.CONFIG.OUTPUT_STRIDE): {', '.join(map(str, dilated)) or 'none (timm cannot dilate it)'}")


if __name__ == "__main__":  # pragma: no cover
    main()
