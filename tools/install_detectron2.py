#!/usr/bin/env python
"""Install detectron2 into the environment of the Python that runs this script.

detectron2 is not on PyPI. Two ways to get it:

* A named source (``--source`` or ``$D2TIMM_DETECTRON2_SOURCE``): a git URL such as
  ``git+https://github.com/facebookresearch/detectron2.git`` or a local detectron2
  checkout. It is built with ``--no-build-isolation`` (its setup.py imports torch)
  and comes with its compiled operators.
* No source: detectron2 v0.6's Python files, taken from the PyPI sdist
  ``pb1-detectron2==0.6`` (fetched from the simple index, sha256-pinned, cached in
  ``~/.cache/d2timm``). It has no C++/CUDA sources, so ``detectron2._C`` is a
  stand-in that raises a clear ImportError for every compiled operator. The
  runtime requirements come from ``requirements/detectron2-v0.6.txt``.

torch and torchvision must already be installed. A marker file in the environment
records what was installed; a second run with the same request only checks that
detectron2 still imports. With no source named, a detectron2 that already has its
compiled operators is kept. ``--force`` reinstalls.

Exit status: 0 on success, 1 when pip fails, 2 for a bad source, a network
failure or a checksum mismatch (nothing is installed in those cases).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import string
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

SOURCE_ENV_VAR = "D2TIMM_DETECTRON2_SOURCE"
INSTALL_HINT = "make install D2_SOURCE=<git URL or checkout>"

FALLBACK_PROJECT = "pb1-detectron2"
FALLBACK_VERSION = "0.6"
FALLBACK_FILENAME = f"{FALLBACK_PROJECT}-{FALLBACK_VERSION}.tar.gz"
FALLBACK_SHA256 = "5d2e9e51e523ec72f6a31cca04b0a515492e9514b773a3d134cedc0677170b29"
FALLBACK_LABEL = f"{FALLBACK_PROJECT}=={FALLBACK_VERSION}"
DEFAULT_INDEX_URL = "https://pypi.org/simple"

REPO_ROOT = Path(__file__).resolve().parent.parent
FALLBACK_REQUIREMENTS = REPO_ROOT / "requirements" / "detectron2-v0.6.txt"
MARKER_NAME = ".d2timm-detectron2.json"

NETWORK_TIMEOUT_S = 60
CHUNK_BYTES = 1 << 16

# detectron2's setup.py installs these small projects as detectron2.projects.*.
FALLBACK_PROJECTS = {
    "detectron2.projects.point_rend": "projects/PointRend/point_rend",
    "detectron2.projects.deeplab": "projects/DeepLab/deeplab",
    "detectron2.projects.panoptic_deeplab": "projects/Panoptic-DeepLab/panoptic_deeplab",
}

# Written as detectron2/_C.py in the Python-only install.
STAND_IN_TEMPLATE = string.Template('''\
"""Stand-in for detectron2's compiled operators (detectron2._C).

Written by d2timm's tools/install_detectron2.py, which installed detectron2 $version
from its Python sources only: the sdist it came from holds no C++/CUDA sources.
Every compiled operator raises ImportError saying how to get a real build. The
informational functions that detectron2.utils.collect_env calls answer plainly,
so that detectron2's environment report (and default_setup) keeps working.
"""

IS_D2TIMM_STAND_IN = True

_VERSION = "$version"
_USED_BY = "rotated boxes, deformable convolution, fast COCO evaluation"
_INSTALL_HINT = "$install_hint"
_NOT_BUILT = "none (detectron2._C is a stand-in: Python sources only)"


def get_compiler_version():
    return _NOT_BUILT


def get_cuda_version():
    return _NOT_BUILT


def has_cuda():
    return False


def __getattr__(name):
    # Import machinery, inspect, pickle and friends probe dunder and private
    # names and expect AttributeError; no compiled operator starts with "_".
    if name.startswith("_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    raise ImportError(
        f"detectron2._C.{name} is a compiled operator (used by {_USED_BY}); "
        f"this detectron2 {_VERSION} was installed from Python sources only. "
        f"Install detectron2 with its compiled ops: {_INSTALL_HINT}",
        name="detectron2._C",
    )
''')

SETUP_TEMPLATE = string.Template("""\
# Written by d2timm's tools/install_detectron2.py: detectron2 $version, Python only.
from setuptools import find_packages, setup

PROJECTS = $projects

setup(
    name="detectron2",
    version="$version",
    description="detectron2 $version Python sources (compiled ops unavailable)",
    packages=find_packages(include=["detectron2", "detectron2.*"]) + list(PROJECTS),
    package_dir=PROJECTS,
    package_data={
        "detectron2.model_zoo": ["configs/**/*.yaml", "configs/**/*.py"],
    },
    python_requires=">=3.7",
)
""")

# Run in a fresh interpreter: reports what `import detectron2` finds.
PROBE_CODE = """\
import json, os
import torch
import detectron2
info = {"version": detectron2.__version__, "location": os.path.dirname(detectron2.__file__)}
try:
    from detectron2 import _C
except ImportError as exc:
    info["ops"] = "broken"
    info["error"] = str(exc)
else:
    info["ops"] = "stand-in" if getattr(_C, "IS_D2TIMM_STAND_IN", False) else "compiled"
print(json.dumps(info))
"""

GIT_URL_PATH = re.compile(r"\.git(@[^/]+)?/?$")
GIT_URL_SCHEMES = {"http", "https", "ssh", "git"}


class InstallError(Exception):
    """A failure to report in one message; carries the exit status."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


class ChecksumError(InstallError):
    def __init__(self, where: str, expected: str, actual: str):
        super().__init__(f"sha256 mismatch for {where}: expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True)
class Source:
    """What to install: kind is "git", "path" or "fallback"."""

    kind: str
    spec: str  # what pip is given (unused for the fallback)
    label: str  # what the marker records and the summary names


FALLBACK_SOURCE = Source("fallback", FALLBACK_LABEL, FALLBACK_LABEL)


def log(message: str) -> None:
    print(f"install_detectron2: {message}", flush=True)


# --------------------------------------------------------------------------- sources


def classify_source(raw: str | None) -> Source:
    """Turn --source / $D2TIMM_DETECTRON2_SOURCE into a Source, or raise InstallError."""
    if raw is None or not raw.strip():
        return FALLBACK_SOURCE
    raw = raw.strip()
    if raw.startswith("git+"):
        return Source("git", raw, raw)
    parts = urlsplit(raw)
    if parts.scheme in GIT_URL_SCHEMES:
        if GIT_URL_PATH.search(parts.path):
            return Source("git", "git+" + raw, raw)
        raise InstallError(
            f"detectron2 source {raw} is a URL but not a git repository URL; "
            "name a git URL (git+https://...detectron2.git) or a local checkout"
        )
    path_text = parts.path if parts.scheme == "file" else raw
    return local_checkout(Path(path_text).expanduser())


def local_checkout(path: Path) -> Source:
    if not path.exists():
        raise InstallError(f"detectron2 source {path} does not exist")
    if not (path / "setup.py").is_file():
        raise InstallError(
            f"detectron2 source {path} is not a detectron2 checkout: it has no setup.py"
        )
    resolved = str(path.resolve())
    return Source("path", resolved, resolved)


# ------------------------------------------------------------------- index and download


class _LinkCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def find_file_link(html: str, page_url: str, filename: str) -> str:
    """The absolute URL (fragment dropped) of the link to `filename` on a simple-index page."""
    collector = _LinkCollector()
    collector.feed(html)
    for href in collector.hrefs:
        url, _fragment = urldefrag(urljoin(page_url, href))
        if unquote(urlsplit(url).path).rsplit("/", 1)[-1] == filename:
            return url
    raise InstallError(f"{page_url} has no link to {filename}")


def index_page_url(project: str) -> str:
    base = os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX_URL
    return f"{base.rstrip('/')}/{project}/"


def open_url(url: str):
    request = urllib.request.Request(url, headers={"Accept": "text/html"})
    try:
        return urllib.request.urlopen(request, timeout=NETWORK_TIMEOUT_S)
    except (urllib.error.URLError, OSError) as exc:
        raise InstallError(f"cannot fetch {url}: {exc}") from exc


def local_index_page(url: str) -> str:
    """A file:// index (as pip accepts) keeps each project page in <dir>/index.html."""
    parts = urlsplit(url)
    if parts.scheme == "file" and Path(unquote(parts.path)).is_dir():
        return urljoin(url if url.endswith("/") else url + "/", "index.html")
    return url


def fetch_text(url: str) -> str:
    with open_url(local_index_page(url)) as response:
        try:
            body = response.read()
        except OSError as exc:
            raise InstallError(f"cannot fetch {url}: {exc}") from exc
        charset = response.headers.get_content_charset() or "utf-8"
    return body.decode(charset, errors="replace")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str, where: str | None = None) -> None:
    actual = sha256_of(path)
    if actual != expected:
        raise ChecksumError(where or str(path), expected, actual)


def download(url: str, destination: Path, expected_sha256: str) -> None:
    """Download to `destination`, which appears only once its sha256 is verified."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, partial_name = tempfile.mkstemp(
        prefix=destination.name + ".", suffix=".part", dir=destination.parent
    )
    partial = Path(partial_name)
    try:
        with os.fdopen(handle, "wb") as out, open_url(url) as response:
            try:
                shutil.copyfileobj(response, out, CHUNK_BYTES)
            except OSError as exc:
                raise InstallError(f"cannot fetch {url}: {exc}") from exc
        verify_sha256(partial, expected_sha256, where=f"{url} (not saved to {destination})")
        os.replace(partial, destination)
    finally:
        partial.unlink(missing_ok=True)


def default_cache_dir() -> Path:
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "d2timm"


def cached_fallback_sdist(cache_dir: Path) -> Path:
    """The verified pb1-detectron2 sdist, from the cache or downloaded into it."""
    target = cache_dir / FALLBACK_FILENAME
    if target.is_file():
        try:
            verify_sha256(target, FALLBACK_SHA256)
        except ChecksumError as exc:
            log(f"cached file is bad ({exc}); downloading it again")
            target.unlink()
        else:
            log(f"using cached {target}")
            return target
    page = index_page_url(FALLBACK_PROJECT)
    url = find_file_link(fetch_text(page), page, FALLBACK_FILENAME)
    log(f"downloading {url}")
    download(url, target, FALLBACK_SHA256)
    return target


# --------------------------------------------------------------- Python-only project


def render_stand_in(version: str) -> str:
    return STAND_IN_TEMPLATE.substitute(version=version, install_hint=INSTALL_HINT)


def render_setup_py(version: str, projects: dict[str, str]) -> str:
    return SETUP_TEMPLATE.substitute(version=version, projects=repr(projects))


def extract_sdist(archive: Path, destination: Path) -> Path:
    """Extract safely; return the directory that holds the detectron2 package."""
    with tarfile.open(archive) as tar:
        tar.extractall(destination, filter="data")
    for candidate in [destination, *sorted(destination.iterdir())]:
        if (candidate / "detectron2" / "__init__.py").is_file():
            return candidate
    raise InstallError(f"{archive} holds no detectron2 package")


def read_version(package_dir: Path) -> str:
    text = (package_dir / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.MULTILINE)
    if not match:
        raise InstallError(f"no __version__ in {package_dir / '__init__.py'}")
    return match.group(1)


def build_python_only_project(sdist_root: Path, project_dir: Path) -> str:
    """Lay out an installable detectron2 (stand-in _C included); return its version."""
    package = project_dir / "detectron2"
    shutil.copytree(sdist_root / "detectron2", package)
    version = read_version(package)
    if any(package.glob("_C.*")):
        raise InstallError(f"{sdist_root} unexpectedly ships detectron2/_C")
    (package / "_C.py").write_text(render_stand_in(version), encoding="utf-8")
    projects = {}
    for name, relative in FALLBACK_PROJECTS.items():
        if (sdist_root / relative / "__init__.py").is_file():
            shutil.copytree(sdist_root / relative, project_dir / relative)
            projects[name] = relative
    (project_dir / "setup.py").write_text(render_setup_py(version, projects), encoding="utf-8")
    return version


# ---------------------------------------------------------------------------- pip


def pip(*args: str, verbose: bool = False) -> None:
    command = [sys.executable, "-m", "pip", *args]
    if not verbose:
        command.insert(3, "--quiet")
    log("running " + " ".join(command))
    completed = subprocess.run(command)
    if completed.returncode != 0:
        raise InstallError(
            f"pip failed (exit {completed.returncode}): {' '.join(command)}", exit_code=1
        )


def install_fallback(cache_dir: Path, verbose: bool) -> None:
    archive = cached_fallback_sdist(cache_dir)  # downloaded and verified before any install
    with tempfile.TemporaryDirectory(prefix="d2timm-detectron2-") as scratch:
        scratch_dir = Path(scratch)
        sdist_root = extract_sdist(archive, scratch_dir / "sdist")
        project_dir = scratch_dir / "project"
        project_dir.mkdir()
        version = build_python_only_project(sdist_root, project_dir)
        log(f"installing detectron2 {version} requirements from {FALLBACK_REQUIREMENTS}")
        forget_marker()
        pip("install", "-r", str(FALLBACK_REQUIREMENTS), verbose=verbose)
        log(f"installing detectron2 {version} (Python sources, stand-in detectron2._C)")
        pip(
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--force-reinstall",
            str(project_dir),
            verbose=verbose,
        )


def install_from_source(source: Source, verbose: bool) -> None:
    """Build once into a wheel, install its requirements, then install that very wheel.

    pip skips a git URL whose version equals the installed one (detectron2's main
    branch also calls itself 0.6), hence the explicit --force-reinstall --no-deps.
    """
    with tempfile.TemporaryDirectory(prefix="d2timm-detectron2-") as scratch:
        log(f"building detectron2 from {source.label} (compiles its C++ operators)")
        pip(
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            scratch,
            source.spec,
            verbose=verbose,
        )
        wheels = sorted(Path(scratch).glob("detectron2-*.whl"))
        if len(wheels) != 1:
            raise InstallError(f"building {source.label} gave no single detectron2 wheel")
        forget_marker()
        pip("install", "--no-build-isolation", str(wheels[0]), verbose=verbose)
        pip("install", "--no-deps", "--force-reinstall", str(wheels[0]), verbose=verbose)


# ----------------------------------------------------------------- state and report


def marker_path() -> Path:
    return Path(sys.prefix) / MARKER_NAME


def forget_marker() -> None:
    """Called just before pip changes the environment: an interrupted install is redone."""
    marker_path().unlink(missing_ok=True)


def file_sha256(path: Path) -> str:
    return sha256_of(path) if path.is_file() else "missing"


def request_record(source: Source) -> dict:
    """What identifies an install request; the marker must match it to skip."""
    record = {"source": source.label}
    if source.kind == "fallback":
        record["sdist_sha256"] = FALLBACK_SHA256
        record["requirements_sha256"] = file_sha256(FALLBACK_REQUIREMENTS)
    return record


def read_marker(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_marker(path: Path, record: dict) -> None:
    partial = path.with_name(path.name + ".part")
    partial.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(partial, path)


def marker_matches(marker: dict | None, request: dict) -> bool:
    return marker is not None and all(marker.get(k) == v for k, v in request.items())


def probe_detectron2() -> dict | None:
    """Import detectron2 in a fresh interpreter; None when it does not import."""
    with tempfile.TemporaryDirectory() as neutral_cwd:  # keep ./detectron2 off sys.path
        completed = subprocess.run(
            [sys.executable, "-c", PROBE_CODE],
            cwd=neutral_cwd,
            capture_output=True,
            text=True,
        )
    if completed.returncode != 0:
        return None
    try:
        return json.loads(completed.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def import_error(modules: str) -> str | None:
    """The last line of the error `import <modules>` gives here, or None if it works."""
    with tempfile.TemporaryDirectory() as neutral_cwd:
        completed = subprocess.run(
            [sys.executable, "-c", f"import {modules}"],
            cwd=neutral_cwd,
            capture_output=True,
            text=True,
        )
    if completed.returncode == 0:
        return None
    lines = completed.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit status {completed.returncode}"


def summary_line(info: dict, label: str) -> str:
    head = f"detectron2 {info['version']} from {label}"
    if info["ops"] == "compiled":
        return f"{head} (compiled ops available)"
    if info["ops"] == "stand-in":
        return f"{head} (Python sources; compiled ops unavailable: " "detectron2._C is a stand-in)"
    return f"{head} (compiled ops unavailable: importing detectron2._C failed: {info['error']})"


def installed_label(marker: dict | None, info: dict) -> str:
    if marker and marker.get("source"):
        return marker["source"]
    return f"an existing installation at {info['location']}"


# --------------------------------------------------------------------------- main


def check_torch() -> None:
    error = import_error("torch, torchvision")
    if error:
        raise InstallError(
            f"torch and torchvision must be installed in {sys.prefix} first ({error})"
        )


def up_to_date(source: Source, marker: dict | None, info: dict | None) -> str | None:
    """The reason to skip installing, or None to install."""
    if info is None:
        return None
    if marker_matches(marker, request_record(source)):
        return f"already installed (recorded in {marker_path()})"
    if source.kind == "fallback" and info["ops"] == "compiled":
        return "no source named and the installed detectron2 has its compiled ops: keeping it"
    return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Install detectron2 into this interpreter's environment: from a git URL or "
            "local checkout (with compiled ops), or else detectron2 v0.6's Python "
            f"sources from the PyPI sdist {FALLBACK_LABEL} (compiled ops unavailable)."
        ),
    )
    parser.add_argument(
        "--source",
        help=(
            "git URL (git+https://github.com/facebookresearch/detectron2.git) or path "
            f"of a detectron2 checkout; default: ${SOURCE_ENV_VAR}, else the fallback"
        ),
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="reinstall even if up to date (with no source named: replace any detectron2 "
        "with the Python-only fallback)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="where the fallback sdist is cached (default: ~/.cache/d2timm)",
    )
    parser.add_argument("--verbose", action="store_true", help="show pip's full output")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    raw_source = args.source if args.source is not None else os.environ.get(SOURCE_ENV_VAR)
    source = classify_source(raw_source)
    marker = read_marker(marker_path())

    if not args.force:
        info = probe_detectron2()
        reason = up_to_date(source, marker, info)
        if reason:
            log(f"{reason}; pass --force to reinstall")
            print(summary_line(info, installed_label(marker, info)), flush=True)
            return 0

    check_torch()
    if source.kind == "fallback":
        install_fallback(args.cache_dir or default_cache_dir(), args.verbose)
    else:
        install_from_source(source, args.verbose)

    info = probe_detectron2()
    if info is None:
        error = import_error("torch, detectron2")
        raise InstallError(f"detectron2 was installed but does not import: {error}", 1)
    write_marker(
        marker_path(), {**request_record(source), "version": info["version"], "ops": info["ops"]}
    )
    log(f"done in {time.monotonic() - started:.0f} s")
    print(summary_line(info, source.label), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except InstallError as exc:
        print(f"install_detectron2: error: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
