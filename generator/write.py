"""Write: put a plan on disk atomically.

The package is written whole into a staging directory next to it and swapped in with
one atomic ``renameat2(RENAME_EXCHANGE)`` (or, where the kernel lacks it, two renames
with a recovery step that every run performs first). The manifest lives inside the
package, so it is swapped in with it. A run killed at any point leaves the previous
package in place. YAML seeds are written one by one (temp file + ``os.replace``) and
only where the user has not edited them.

One run at a time per output directory: a second waits for the lock, then gives up
with a message naming the lock file.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Iterator, List, Mapping, Optional

from filelock import FileLock, Timeout

from .plan import ADDED, CHANGED, Plan, compare

__all__ = ["LockBusy", "locked", "recover", "write_plan"]

LOCK_NAME = ".d2timm-gen.lock"


class LockBusy(RuntimeError):
    """Another d2timm-gen run holds the output directory."""


@contextlib.contextmanager
def locked(root: Path, timeout: float, on_wait=None) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(root / LOCK_NAME))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if on_wait is not None:
            on_wait(root / LOCK_NAME)
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise LockBusy(
                f"another d2timm-gen run is writing to {root} (lock {root / LOCK_NAME}); "
                f"gave up after {timeout:g}s. Run again when it has finished."
            ) from None
    try:
        yield
    finally:
        lock.release()


def _staging(root: Path, package: str) -> Path:
    return root / f".{package}.staging"


def _previous(root: Path, package: str) -> Path:
    return root / f".{package}.previous"


def recover(root: Path, package: str) -> None:
    """Undo what an interrupted run left: restore a package moved aside, drop staging."""
    target, previous = root / package, _previous(root, package)
    if previous.exists():
        if target.exists():
            shutil.rmtree(previous)
        else:
            os.rename(previous, target)
    staging = _staging(root, package)
    if staging.exists():
        shutil.rmtree(staging)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2). False where unsupported."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(str(a)), at_fdcwd, os.fsencode(str(b)), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EPERM, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(a))


def _write_tree(base: Path, files: Mapping[str, str]) -> None:
    for rel, text in files.items():
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)


def _swap_in(root: Path, package: str, staging: Path) -> None:
    target = root / package
    if not target.exists():
        os.rename(staging, target)
        return
    if _exchange(staging, target):
        shutil.rmtree(staging)  # now holds the previous package
        return
    previous = _previous(root, package)
    os.rename(target, previous)
    os.rename(staging, target)
    shutil.rmtree(previous)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_plan(plan: Plan, root: Path, manifest: Optional[Mapping]) -> List:
    """Write ``plan`` under ``root`` (the caller holds the lock). Returns the changes made,
    including STALE_SEED notices for edited seeds that were kept."""
    root = Path(root)
    recover(root, plan.package)
    changes = compare(plan, root, manifest)
    for change in changes:
        if change.path in plan.seeds and change.kind in (ADDED, CHANGED):
            _write_atomic(root / change.path, plan.seeds[change.path])
    package_changed = any(c.path not in plan.seeds for c in changes)
    if package_changed:
        staging = _staging(root, plan.package)
        prefix = f"{plan.package}/"
        _write_tree(staging, {path[len(prefix):]: text for path, text in plan.files.items()})
        _swap_in(root, plan.package, staging)
    return changes
