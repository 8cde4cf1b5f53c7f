"""A real ``python -m generator.cli generate`` process killed at chosen moments, and two
generations on one directory at once.

Killed with SIGKILL (the main process alone, as the OOM killer or a crash does: its
introspection workers are orphaned) or SIGINT (the whole process group, as Ctrl-C does),
at four moments: while introspecting (after the first progress line, the second model
still in its worker), at the first file written to the staging directory, with the whole
new package staged just before the swap, and just after the swap. Each time the package
left behind is whole (the previous one, or after the swap the new one), ``check`` is
clean, and the next run takes the lock, removes what the killed run left and changes
nothing else. test_write.py covers the same states in-process with monkeypatched swaps.

The moments are observed, never waited for with sleeps: progress lines are read from the
child's stderr, and the write-phase moments are found by an audit hook
(``sys.addaudithook``) loaded as ``sitecustomize`` from a test-only ``PYTHONPATH`` entry.
It stops the child (SIGSTOP) at the first ``open`` under ``.<package>.staging``, at the
``ctypes.dlopen`` of the swap, or at the ``shutil.rmtree`` that follows it; the test then
inspects the disk and kills the stopped child. The "still introspecting" moment is made
to last by a model registered through ``--import`` whose creation never returns. The hook
also gives SIGINT Python's default handler, as in a terminal, so that the SIGINT cases
mean the same when pytest itself runs with SIGINT ignored (as a background job does).
Linux only (``/proc``, process groups), like the project.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, List, Optional

import pytest

from tests.helpers import LOCK_NAME, ROOT, SMALL_PACKAGE, cli, load_json, subprocess_env, summary_line, tree_bytes

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc and signals process groups")

PKG = SMALL_PACKAGE
STAGING = f".{PKG}.staging"

#: Upper bound for one observable state to appear (process start-up imports torch and
#: timm; the machine may be busy). Never slept: every wait polls and returns at once.
DEADLINE = 300.0

SITECUSTOMIZE = '''\
"""tests/test_hardening.py only: Ctrl-C raises KeyboardInterrupt as in a terminal, even
when the test run was started with SIGINT ignored (a background job); and, if
D2TIMM_TEST_STOP_AT names a moment of the write phase, stop this process (SIGSTOP) there
after writing D2TIMM_TEST_MARKER."""
import os
import signal
import sys

signal.signal(signal.SIGINT, signal.default_int_handler)

_STOP = os.environ.get("D2TIMM_TEST_STOP_AT")
if _STOP:
    _STAGING = os.environ["D2TIMM_TEST_STAGING"]
    _PREVIOUS = os.environ["D2TIMM_TEST_PREVIOUS"]
    _MARKER = os.environ["D2TIMM_TEST_MARKER"]
    _state = {"staged": False, "done": False}

    def _path(value):
        try:
            return os.fsdecode(value)
        except TypeError:  # a file descriptor
            return ""

    def _hook(event, args):
        if _state["done"]:
            return
        if event == "open" and _path(args[0]).startswith(_STAGING + os.sep):
            hit = _STOP == "first-staged-file" and not _state["staged"]
            _state["staged"] = True
        elif event == "ctypes.dlopen":  # generator.write._exchange, the atomic swap
            hit = _STOP == "before-swap" and _state["staged"]
        elif event == "shutil.rmtree":  # the previous package, deleted after the swap
            hit = _STOP == "after-swap" and _state["staged"] and _path(args[0]) in (_STAGING, _PREVIOUS)
        else:
            return
        if hit:
            _state["done"] = True
            with open(_MARKER, "w") as marker:
                marker.write(_STOP)
            os.kill(os.getpid(), signal.SIGSTOP)

    sys.addaudithook(_hook)
'''

HANG_PLUGIN = '''\
"""tests/test_hardening.py only: a timm model whose creation never returns."""
import time

from timm.models import register_model


@register_model
def zzz_hang(pretrained=False, **kwargs):
    while True:
        time.sleep(1)
'''


@pytest.fixture(scope="module")
def test_path(tmp_path_factory) -> Path:
    """A PYTHONPATH entry with the stop hook (sitecustomize) and the hanging model."""
    path = tmp_path_factory.mktemp("hardening-path")
    (path / "sitecustomize.py").write_text(SITECUSTOMIZE)
    (path / "d2timm_test_hang.py").write_text(HANG_PLUGIN)
    return path


def _wait_for(condition: Callable[[], bool], what: str, gen: Optional["Generation"] = None) -> None:
    """Poll ``condition`` until it holds; fail at the deadline, or at once if ``gen``'s
    process exits first."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if gen is not None and gen.proc.poll() is not None:
            pytest.fail(f"the generation exited {gen.proc.returncode} before {what}:\n{gen.output()}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {DEADLINE:g}s" + (f":\n{gen.output()}" if gen else ""))
        time.sleep(0.01)


class Generation:
    """``python -m generator.cli generate ARGS --package pkg_small --output ROOT --jobs 1``
    in its own process group, its output collected line by line as it comes. Leaving the
    ``with`` block kills whatever is left of the group."""

    def __init__(self, root: Path, *args: str, test_path: Path, stop_at: Optional[str] = None):
        self.marker = root.parent / f"stopped-{os.getpid()}-{id(self)}"
        env = subprocess_env(PYTHONUNBUFFERED="1", PYTHONHASHSEED="0")
        env["PYTHONPATH"] = os.pathsep.join([str(test_path), env["PYTHONPATH"]])
        if stop_at:
            env.update(
                D2TIMM_TEST_STOP_AT=stop_at,
                D2TIMM_TEST_STAGING=str(root / STAGING),
                D2TIMM_TEST_PREVIOUS=str(root / f".{PKG}.previous"),
                D2TIMM_TEST_MARKER=str(self.marker),
            )
        command = [sys.executable, "-m", "generator.cli", "generate", *args]
        command += ["--package", PKG, "--output", str(root), "--jobs", "1"]
        self.proc = subprocess.Popen(
            command, cwd=str(ROOT), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )  # fmt: skip
        self.stdout: List[str] = []
        self.stderr: List[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(stream, lines), daemon=True)
            for stream, lines in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr))
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, lines: List[str]) -> None:
        for line in stream:
            lines.append(line)

    def output(self) -> str:
        return "".join(self.stdout) + "".join(self.stderr)

    def __enter__(self) -> "Generation":
        return self

    def __exit__(self, *exc) -> None:
        self._signal_group(signal.SIGKILL)
        self.proc.wait(timeout=60)
        for reader in self._readers:
            reader.join(timeout=60)

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def wait_for_stderr(self, text: str) -> None:
        _wait_for(lambda: any(text in line for line in self.stderr), repr(text), self)

    def _state(self) -> str:
        with open(f"/proc/{self.proc.pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]

    def wait_stopped(self) -> str:
        """Wait until the stop hook has stopped the child; returns the moment's name. (A
        child that finishes first never reached the moment: generator/write.py changed?)"""
        _wait_for(lambda: self.marker.exists() and self._state() == "T", "the moment the hook stops at", self)
        return self.marker.read_text()

    def kill(self, sig: int) -> int:
        """SIGKILL the main process alone (its workers live on, orphaned), or SIGINT the
        whole group as Ctrl-C does (then SIGCONT, so that a stopped child handles it and
        its output is complete). Returns the exit status."""
        if sig == signal.SIGKILL:
            self.proc.send_signal(signal.SIGKILL)
            _wait_for(lambda: self.proc.poll() is not None, "exit after SIGKILL")
            return self.proc.returncode
        self._signal_group(sig)
        self._signal_group(signal.SIGCONT)
        return self.finish()

    def finish(self) -> int:
        """Wait for the whole group to end (its pipes closed); returns the exit status."""
        _wait_for(lambda: self.proc.poll() is not None and not any(r.is_alive() for r in self._readers), "exit")
        return self.proc.returncode


# ----------------------------------------------------------------------------- checks


def _args(root: Path):
    return ("--package", PKG, "--output", root, "--jobs", "1")


def _leftovers(root: Path) -> List[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith(f".{PKG}."))


def _assert_check_clean(root: Path) -> None:
    result = cli("check", *_args(root))
    assert result.exit_code == 0, result.output


def _assert_next_run_completes(root: Path, models: List[str]) -> None:
    """The lock is free (no orphaned worker holds it), the run removes what the killed
    one left and regenerates the recorded selection without changing a file (so the
    package still matches a fresh generation: `check` stays clean)."""
    result = cli("generate", *_args(root), "--lock-timeout", "10")
    assert result.exit_code == 0, result.output
    assert f"{len(models)} models generated" in summary_line(result.stdout)
    assert " 0 files changed" in summary_line(result.stdout)
    assert _leftovers(root) == []
    assert sorted(load_json(root / PKG / "MANIFEST.json")["models"]) == models


def _assert_killed(status: int, sig: int, gen: Generation) -> None:
    if sig == signal.SIGKILL:
        assert status == -signal.SIGKILL, gen.output()
    else:  # Ctrl-C: click's orderly "Aborted!", exit 1, no traceback (from any process)
        assert status == 1 and gen.stderr[-1:] == ["Aborted!\n"], gen.output()
        assert "Traceback" not in gen.output(), gen.output()


SIGNALS = pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])


# ------------------------------------------------------------------------------ kills


@pytest.mark.slow  # 17 to 28 s here: a worker process imports torch and timm too
@SIGNALS
def test_killed_while_introspecting_changes_nothing(small_copy, test_path, sig):
    """`generate resnet10t zzz_hang`: killed once resnet10t is done, zzz_hang still in
    its worker. Nothing was written: the whole directory is as before."""
    before = tree_bytes(small_copy)
    args = ("resnet10t", "zzz_hang", "--import", "d2timm_test_hang")
    with Generation(small_copy, *args, test_path=test_path) as gen:
        gen.wait_for_stderr("[1/2] resnet10t: ok")
        assert not (small_copy / STAGING).exists()
        _assert_killed(gen.kill(sig), sig, gen)
        # still inside the block: after SIGKILL, zzz_hang's orphaned worker is alive here
        assert tree_bytes(small_copy) == before
        _assert_check_clean(small_copy)
        _assert_next_run_completes(small_copy, ["convnext_atto", "resnet18"])


#: Every moment with both signals; `make test` runs one signal per moment (each case costs
#: a process start-up: 10 to 18 s here), `make test-all` the other three as well.
WRITE_CASES = [
    pytest.param("first-staged-file", signal.SIGKILL, id="first-staged-file-SIGKILL"),
    pytest.param("first-staged-file", signal.SIGINT, id="first-staged-file-SIGINT", marks=pytest.mark.slow),
    pytest.param("before-swap", signal.SIGINT, id="before-swap-SIGINT"),
    pytest.param("before-swap", signal.SIGKILL, id="before-swap-SIGKILL", marks=pytest.mark.slow),
    pytest.param("after-swap", signal.SIGKILL, id="after-swap-SIGKILL"),
    pytest.param("after-swap", signal.SIGINT, id="after-swap-SIGINT", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("moment, sig", WRITE_CASES)
def test_killed_while_writing_leaves_a_whole_package(small_copy, test_path, moment, sig):
    """`generate --replace resnet18` (drops convnext_atto) killed in its write phase.
    Before the swap the previous package is in place, untouched; after it the new one is,
    whole. Either way `check` is clean and the next run cleans up."""
    package, staging = small_copy / PKG, small_copy / STAGING
    previous = tree_bytes(package)
    with Generation(small_copy, "--replace", "resnet18", test_path=test_path, stop_at=moment) as gen:
        assert gen.wait_stopped() == moment
        if moment == "after-swap":  # the previous package waits in staging to be deleted
            assert tree_bytes(staging) == previous
            new = tree_bytes(package)
            assert sorted(load_json(package / "MANIFEST.json")["models"]) == ["resnet18"]
        else:
            assert tree_bytes(package) == previous
            if moment == "before-swap":  # the whole new package is staged
                assert sorted(load_json(staging / "MANIFEST.json")["models"]) == ["resnet18"]
                assert not any(path.startswith("convnext/") for path in tree_bytes(staging))
        _assert_killed(gen.kill(sig), sig, gen)
    if moment == "after-swap":
        assert tree_bytes(package) == new
        models = ["resnet18"]
    else:
        assert tree_bytes(package) == previous
        models = ["convnext_atto", "resnet18"]
    _assert_check_clean(small_copy)
    _assert_next_run_completes(small_copy, models)


# ------------------------------------------------------------------------------- lock


@pytest.mark.slow  # 20 to 34 s here: three processes (test_cli covers the lock in-process)
def test_a_second_generation_waits_or_gives_up_naming_the_lock(small_copy, test_path):
    """A (`generate --replace resnet18`) is stopped holding the lock, in its write phase.
    B (`--lock-timeout 1`) gives up, exit 2, naming the lock, having written nothing.
    C (default timeout) waits, and once A has finished plans from A's manifest: it finds
    A's selection (resnet18 only) and has nothing to change."""
    lock = small_copy / LOCK_NAME
    package = small_copy / PKG
    previous = tree_bytes(small_copy)
    with contextlib.ExitStack() as processes:
        a = processes.enter_context(
            Generation(small_copy, "--replace", "resnet18", test_path=test_path, stop_at="first-staged-file")
        )
        a.wait_stopped()
        b = processes.enter_context(Generation(small_copy, "--lock-timeout", "1", test_path=test_path))
        c = processes.enter_context(Generation(small_copy, test_path=test_path))
        assert b.finish() == 2, b.output()
        assert f"waiting for lock {lock} ..." in b.stderr[0], b.output()
        error = b.stderr[-1]
        assert error.startswith("error: ") and str(lock) in error and "gave up after 1s" in error, b.output()
        assert _without_staging(tree_bytes(small_copy)) == previous  # B wrote nothing; A has not swapped
        c.wait_for_stderr(f"waiting for lock {lock} ...")
        os.kill(a.proc.pid, signal.SIGCONT)
        assert a.finish() == 0, a.output()
        assert "1 models generated" in summary_line("".join(a.stdout))
        assert c.finish() == 0, c.output()
        line = summary_line("".join(c.stdout))
        assert "1 models generated" in line and " 0 files changed" in line, c.output()
    assert sorted(load_json(package / "MANIFEST.json")["models"]) == ["resnet18"]
    assert _leftovers(small_copy) == []
    _assert_check_clean(small_copy)


def _without_staging(tree):
    """A directory tree less the staging directory that a stopped run is writing."""
    return {path: data for path, data in tree.items() if not path.startswith(f"{STAGING}/")}
