"""Measure the drift between an older timm release and the installed one.

    .venv/bin/python tools/dev/drift_experiment.py --old 1.0.3

1. installs ``timm==OLD`` (no dependencies) into ``--cache`` (``.cache/timm/timm-OLD``)
   with ``pip install --target``, unless it is already there;
2. generates the selected families (default: resnet, convnext, efficientnet, regnet,
   mobilenetv3, the package's first selection) into a
   scratch output directory, running ``d2timm-gen generate`` in a subprocess whose
   ``PYTHONPATH`` puts the old timm first, so it shadows the installed one;
3. runs ``d2timm-gen check --format json`` (and the text report) on that output under
   the installed timm: exactly what CI's drift check would say after a timm upgrade;
4. writes a markdown report (counts of added, removed and changed models, which spec
   fields changed with ``old -> new`` examples, exclusions, files that changed without a
   spec change) to ``--report`` (default ``.cache/drift/timm-OLD-to-NEW.md``), with the
   check's JSON and text beside it, and prints it.

Nothing in the repository's own ``generated/`` or ``configs/`` is read or written
(except the list of families, with ``--from-manifest``). ``--source DIR`` or ``--ref
REF`` runs another copy of the generator (both steps use the same one, so only timm
differs). Exit 0 when the report was written (drift or not), 2 on an error.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[2]
#: The package's first selection: five CNN families (``--from-manifest`` takes the one in
#: generated/MANIFEST.json instead, which now covers all of timm).
DEFAULT_FAMILIES = ("convnext", "efficientnet", "mobilenetv3", "regnet", "resnet")
PACKAGE = "generated"
KINDS = ("ADDED", "REMOVED", "CHANGED", "HAND_EDITED", "STALE_SEED")
EXAMPLES_PER_FIELD = 4


def log(message: str) -> None:
    print(f"[drift {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class ExperimentError(RuntimeError):
    pass


# --------------------------------------------------------------------------- set-up


def installed_version(target: Path) -> Optional[str]:
    version_file = target / "timm" / "version.py"
    if not version_file.is_file():
        return None
    match = re.search(r"""__version__\s*=\s*['"]([^'"]+)['"]""", version_file.read_text())
    return match.group(1) if match else None


def install_timm(version: str, cache: Path) -> Path:
    """``timm==version`` under ``cache/timm-version`` (pip --target, no dependencies)."""
    target = cache / f"timm-{version}"
    if installed_version(target) == version:
        log(f"timm {version}: already in {target}")
        return target
    log(f"timm {version}: installing into {target}")
    staging = Path(tempfile.mkdtemp(prefix=f".timm-{version}.", dir=cache))
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(staging), f"timm=={version}"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 or installed_version(staging) != version:
        shutil.rmtree(staging, ignore_errors=True)
        raise ExperimentError(f"cannot install timm=={version}:\n{result.stdout}{result.stderr}")
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target


def export_ref(ref: str, dest: Path) -> Path:
    """The generator as committed at ``ref`` (``git archive``), under ``dest``."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True)
    if archive.returncode != 0:
        raise ExperimentError(f"git archive {ref} failed: {archive.stderr.decode(errors='replace')}")
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def families_from_manifest(path: Path) -> Tuple[List[str], List[str]]:
    selection = json.loads(path.read_text())["selection"]
    return list(selection.get("families", [])), list(selection.get("patterns", []))


def env_for(source: Path, timm_dir: Optional[Path], any_timm: bool) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = os.pathsep.join(([str(timm_dir)] if timm_dir else []) + [str(source)])
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("PYTHONWARNINGS", "ignore")
    if any_timm:
        env["D2TIMM_ANY_TIMM"] = "1"
    return env


def gen_cli(source: Path, args: Sequence[str], env: Mapping[str, str], stdout=None) -> subprocess.CompletedProcess:
    """``python -m generator.cli ARGS`` from ``source`` (stderr, the progress, passes through)."""
    cmd = [sys.executable, "-m", "generator.cli", *map(str, args)]
    return subprocess.run(cmd, cwd=str(source), env=dict(env), stdout=stdout, text=True)


def timm_version_under(source: Path, env: Mapping[str, str]) -> str:
    code = "from generator.compat import installed_timm_version as v; print(v())"
    out = subprocess.run([sys.executable, "-c", code], cwd=str(source), env=dict(env), capture_output=True, text=True)
    if out.returncode != 0:  # a generator without generator.compat
        code = "import timm; print(timm.__version__)"
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=str(source), env=dict(env), capture_output=True, text=True
        )
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else "?"


# --------------------------------------------------------------------------- report

_LINE = re.compile(r"^(?P<key>[^:]+): (?P<old>.*) -> (?P<new>.*)$")


def classify(models: Mapping[str, List[str]]) -> Dict[str, Dict[str, List[str]]]:
    """Models by what happened to them, from ``check --format json``'s ``models``."""
    out: Dict[str, Dict[str, List[str]]] = {k: {} for k in ("added", "removed", "changed", "excluded")}
    for name, lines in models.items():
        first = lines[0] if lines else ""
        if first.startswith("new model"):
            out["added"][name] = lines
        elif first.startswith("removed:"):
            out["removed"][name] = lines
        elif first.startswith(("newly excluded", "excluded reason", "no longer listed")):
            out["excluded"][name] = lines
        else:
            out["changed"][name] = lines
    return out


def field_changes(changed: Mapping[str, List[str]]) -> Dict[str, List[Tuple[str, str, str, str]]]:
    """Spec field (list indices folded to ``[]``) -> [(model, field, old, new)]."""
    fields: Dict[str, List[Tuple[str, str, str, str]]] = defaultdict(list)
    for model, lines in changed.items():
        for line in lines:
            match = _LINE.match(line)
            if not match:
                fields[line].append((model, line, "", ""))
                continue
            key = match.group("key")
            fields[re.sub(r"\[\d+\]", "[]", key)].append((model, key, match.group("old"), match.group("new")))
    return dict(fields)


def model_of(path: str) -> Optional[str]:
    """The model a generated module or seed belongs to (None for package-level files)."""
    parts = path.split("/")
    if len(parts) != 3 or not parts[2].endswith((".py", ".yaml")) or parts[2] == "__init__.py":
        return None
    stem = parts[2].rsplit(".", 1)[0]
    if parts[0] == "configs" and stem.endswith("_fpn"):
        stem = stem[: -len("_fpn")]
    return stem


def render_report(
    *,
    old: str,
    new: str,
    selection: str,
    source: str,
    old_manifest: Mapping,
    payload: Mapping,
    check_rc: int,
    timings: Mapping[str, float],
    command: str,
    artefacts: Mapping[str, str],
) -> str:
    models = classify(payload.get("models", {}))
    changes = payload.get("changes", [])
    kinds = Counter(c["kind"] for c in changes)
    old_models = old_manifest.get("models", {})
    old_excluded = old_manifest.get("excluded", {})
    n_new = len(old_models) - len(models["removed"]) + len(models["added"])
    spec_changed = set(models["changed"])
    module_changes = {c["path"]: c["kind"] for c in changes if c["path"].startswith(f"{PACKAGE}/")}
    file_only = sorted(
        {m for p, k in module_changes.items() if k == "CHANGED" and (m := model_of(p)) and m in old_models}
        - spec_changed
    )
    lines: List[str] = [
        f"# Drift: timm {old} -> {new}",
        "",
        f"- selection: {selection}",
        f"- generator: {source}",
        f"- command: `{command}`",
        f"- date: {datetime.date.today().isoformat()}; "
        + ", ".join(f"{stage} {seconds / 60:.1f} min" for stage, seconds in timings.items()),
        f"- `d2timm-gen check` exit code: {check_rc} ({'drift' if check_rc == 1 else 'clean' if check_rc == 0 else 'error'})",
        "",
        "## Summary",
        "",
        "| | count |",
        "|---|---:|",
        f"| models generated with timm {old} | {len(old_models)} ({len(old_excluded)} excluded) |",
        f"| models generated with timm {new} | {n_new} |",
        f"| models added (new in timm {new}, or no longer excluded) | {len(models['added'])} |",
        f"| models removed (gone from timm, or now excluded) | {len(models['removed'])} |",
        f"| models whose spec changed | {len(models['changed'])} |",
        f"| models whose files changed with the same spec | {len(file_only)} |",
        f"| models unchanged | {len(set(old_models) - spec_changed - set(models['removed']) - set(file_only))} |",
        f"| exclusions changed | {len(models['excluded'])} |",
        "| files " + ", ".join(f"{k} {kinds[k]}" for k in KINDS if kinds[k]) + f" | {len(changes)} |",
        "",
    ]
    fields = field_changes(models["changed"])
    lines += ["## Changed spec fields", ""]
    if fields:
        lines += ["| field | models | examples (model: old -> new) |", "|---|---:|---|"]
        for key, rows in sorted(fields.items(), key=lambda kv: (-len({r[0] for r in kv[1]}), kv[0])):
            examples = "<br>".join(
                f"`{m}`: {f'`{k}` ' if k != key else ''}{o} -> {n}".replace("|", "\\|")
                for m, k, o, n in sorted(rows)[:EXAMPLES_PER_FIELD]
            )
            lines.append(f"| `{key}` | {len({r[0] for r in rows})} | {examples} |")
    else:
        lines.append("No spec field changed.")
    lines.append("")

    def listing(title: str, entries: Mapping[str, List[str]]) -> None:
        lines.extend([f"## {title} ({len(entries)})", ""])
        if not entries:
            lines.extend(["None.", ""])
            return
        by_reason: Dict[str, List[str]] = defaultdict(list)
        for name, why in sorted(entries.items()):
            by_reason["; ".join(why)].append(name)
        for reason, names in sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            lines.append(f"- {reason} ({len(names)}): " + ", ".join(f"`{n}`" for n in names))
        lines.append("")

    listing("Models added", models["added"])
    listing("Models removed", models["removed"])
    listing("Exclusions changed", models["excluded"])
    if old_excluded:
        lines += [f"## Excluded with timm {old} ({len(old_excluded)})", ""]
        for name, entry in sorted(old_excluded.items()):
            lines.append(f"- `{name}` ({entry['family']}): {entry['reason']}")
        lines.append("")
    lines += [f"## Files changed with the same spec ({len(file_only)} models)", ""]
    lines.append(", ".join(f"`{m}`" for m in file_only) if file_only else "None.")
    lines.append("")
    other = sorted(p for p, k in module_changes.items() if model_of(p) is None)
    if other:
        lines += ["Package files: " + ", ".join(f"{module_changes[p]} `{p}`" for p in other), ""]
    lines += ["## Artefacts", ""] + [f"- {what}: `{path}`" for what, path in artefacts.items()] + [""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--old", required=True, help="the older timm release, e.g. 1.0.3")
    parser.add_argument(
        "--family",
        "-f",
        action="append",
        dest="families",
        help="a timm family (repeatable); default: the five CNN families",
    )
    parser.add_argument(
        "--pattern", "-p", action="append", dest="patterns", default=[], help="a model glob (repeatable)"
    )
    parser.add_argument("--from-manifest", action="store_true", help="use generated/MANIFEST.json's selection")
    parser.add_argument("--report", type=Path, help="markdown report path (default .cache/drift/timm-OLD-to-NEW.md)")
    parser.add_argument(
        "--cache", type=Path, default=ROOT / ".cache" / "timm", help="where old timm releases are installed"
    )
    parser.add_argument("--work", type=Path, help="scratch directory (default: a temporary one, removed afterwards)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--jobs", "-j", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300, help="seconds per model introspection")
    parser.add_argument(
        "--no-text", dest="text", action="store_false", help="skip the text check (it introspects again)"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--source", type=Path, default=ROOT, help="the generator checkout to run (default: this one)")
    source.add_argument("--ref", help="run the generator as committed at this git ref")
    parser.add_argument(
        "--any-timm", action="store_true", help="run even if the old timm is outside the supported range"
    )
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    command = "tools/dev/drift_experiment.py " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.from_manifest:
        families, patterns = families_from_manifest(ROOT / PACKAGE / "MANIFEST.json")
    else:
        families, patterns = list(args.families or ([] if args.patterns else DEFAULT_FAMILIES)), list(args.patterns)
    selection = ", ".join([f"family {f}" for f in families] + [f"pattern {p}" for p in patterns])
    args.cache.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="d2timm-drift-"))
    work.mkdir(parents=True, exist_ok=True)
    timings: Dict[str, float] = {}
    try:
        old_timm = install_timm(args.old, args.cache)
        source = args.source.resolve()
        source_label = str(source)
        if args.ref:
            src_dir = work / "src"
            if src_dir.exists():
                shutil.rmtree(src_dir)
            source = export_ref(args.ref, src_dir)
            source_label = f"git {args.ref} (exported to {source})"
        old_env = env_for(source, old_timm, args.any_timm)
        new_env = env_for(source, None, False)
        new = timm_version_under(source, new_env)
        seen_old = timm_version_under(source, old_env)
        if seen_old != args.old:
            raise ExperimentError(
                f"with PYTHONPATH={old_env['PYTHONPATH']} the generator sees timm {seen_old}, not {args.old}"
            )
        out = work / "out"
        manifest_path = out / PACKAGE / "MANIFEST.json"
        reuse = manifest_path.is_file() and json.loads(manifest_path.read_text())["versions"].get("timm") == args.old
        start = time.perf_counter()
        if reuse:
            log(f"reusing the timm {args.old} generation in {out}")
        else:
            if out.exists():
                shutil.rmtree(out)
            log(f"generating {selection} with timm {args.old} into {out}")
            gen_args = ["generate", *patterns, *(a for f in families for a in ("--family", f))]
            gen_args += ["--output", out, "--package", PACKAGE, "--jobs", args.jobs, "--timeout", args.timeout]
            result = gen_cli(source, gen_args, old_env)
            if result.returncode != 0:
                raise ExperimentError(
                    f"generate under timm {args.old} exited {result.returncode} (see its output above)"
                )
            timings[f"generate (timm {args.old})"] = time.perf_counter() - start
        old_manifest = json.loads(manifest_path.read_text())

        report = args.report or ROOT / ".cache" / "drift" / f"timm-{args.old}-to-{new}.md"
        report.parent.mkdir(parents=True, exist_ok=True)
        json_path, text_path = report.with_suffix(".check.json"), report.with_suffix(".check.txt")
        check_args = ["check", "--output", out, "--package", PACKAGE, "--jobs", args.jobs, "--timeout", args.timeout]
        log(f"checking with timm {new} (--format json)")
        start = time.perf_counter()
        with open(json_path, "w") as handle:
            check = gen_cli(source, [*check_args, "--format", "json"], new_env, stdout=handle)
        timings[f"check (timm {new})"] = time.perf_counter() - start
        if check.returncode not in (0, 1):
            raise ExperimentError(f"check exited {check.returncode}: {json_path.read_text()[-2000:]}")
        payload = json.loads(json_path.read_text())
        artefacts = {"check --format json": str(json_path)}
        if args.text:
            log(f"checking with timm {new} (text report with diffs)")
            with open(text_path, "w") as handle:
                text = gen_cli(source, check_args, new_env, stdout=handle)
            if text.returncode != check.returncode:
                raise ExperimentError(f"the text check exited {text.returncode}, the JSON check {check.returncode}")
            artefacts["check (text, diffs)"] = str(text_path)
        if args.keep or args.work:
            artefacts[f"package generated with timm {args.old}"] = str(out)
        markdown = render_report(
            old=args.old,
            new=new,
            selection=selection,
            source=source_label,
            old_manifest=old_manifest,
            payload=payload,
            check_rc=check.returncode,
            timings=timings,
            command=command,
            artefacts=artefacts,
        )
        report.write_text(markdown)
        print(markdown)
        log(f"report written to {report}")
        return 0
    except ExperimentError as exc:
        log(f"error: {exc}")
        return 2
    finally:
        if not args.work and not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
