"""Format: every generated Python file goes through pinned black, then ``ast.parse``.

A template that renders invalid Python fails here, naming the file, before anything is
written.

black is most of the cost of a regeneration (about 60 ms a module), and its output
depends only on the rendered text, black's version and :data:`BLACK_MODE`. So a file
is formatted once: the manifest records each Python file's :func:`source_key`, and a
later run that renders the same text reuses the formatted file it wrote, if that file is
unchanged on disk (:func:`format_files`, ``known``). The rest are formatted in ``jobs``
processes.
"""

from __future__ import annotations

import ast
import hashlib
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Dict, Mapping, Optional

import black
import yaml

__all__ = ["BLACK_MODE", "FORMATTER", "FormatError", "format_file", "format_files", "source_key"]

#: The one black configuration of generated code. black itself is pinned in
#: requirements/base.txt: another black version may format differently, and the
#: manifest records the version used.
BLACK_MODE = black.Mode(
    target_versions={black.TargetVersion.PY39},
    line_length=100,
    string_normalization=True,
    magic_trailing_comma=True,
)

#: Everything besides the text that black's output depends on.
FORMATTER = f"black {black.__version__} {BLACK_MODE.get_cache_key()}"

#: Below this many files to format, worker processes cost more than they save.
_PARALLEL_MIN = 64

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when the wheel has it


class FormatError(ValueError):
    """Rendered text that is not valid Python, YAML or JSON."""


def format_python(text: str, path: str) -> str:
    try:
        formatted = black.format_str(text, mode=BLACK_MODE)
    except Exception as exc:  # black raises InvalidInput and friends
        raise FormatError(f"{path}: black cannot format the rendered template: {exc}") from None
    try:
        ast.parse(formatted, filename=path)
    except SyntaxError as exc:
        raise FormatError(f"{path}: rendered Python does not parse: {exc}") from None
    return formatted


def format_file(path: str, text: str) -> str:
    """Format ``text`` by the kind ``path`` names, or check it parses."""
    if path.endswith(".py"):
        return format_python(text, path)
    if path.endswith((".yaml", ".yml")):
        try:
            yaml.load(text, Loader=_YAML_LOADER)
        except yaml.YAMLError as exc:
            raise FormatError(f"{path}: rendered YAML does not parse: {exc}") from None
    elif path.endswith(".json"):
        try:
            json.loads(text)
        except ValueError as exc:
            raise FormatError(f"{path}: rendered JSON does not parse: {exc}") from None
    if not text.endswith("\n"):
        text += "\n"
    return text


def source_key(text: str) -> str:
    """Names the formatted output of a rendered Python text: equal keys, equal output."""
    return hashlib.sha256(f"{FORMATTER}\n{text}".encode("utf-8")).hexdigest()


def _format_item(item):
    path, text = item
    return format_file(path, text)


def format_files(
    rendered: Mapping[str, str], known: Optional[Mapping[str, str]] = None, jobs: int = 1
) -> Dict[str, str]:
    """:func:`format_file` over ``rendered`` (path -> text), in path order.

    ``known`` maps :func:`source_key` to a formatted text from an earlier run; a Python
    file whose key is there is not formatted again. With ``jobs`` > 1 and enough files
    left, they are formatted in that many processes: the result is the same.
    """
    known = known or {}
    out: Dict[str, str] = {}
    todo = []
    for path, text in sorted(rendered.items()):
        reuse = known.get(source_key(text)) if path.endswith(".py") else None
        if reuse is not None:
            out[path] = reuse
        else:
            todo.append((path, text))
    if jobs > 1 and len(todo) >= _PARALLEL_MIN:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            chunk = max(1, len(todo) // (8 * jobs))
            out.update(zip((path for path, _ in todo), pool.map(_format_item, todo, chunksize=chunk)))
    else:
        out.update((path, format_file(path, text)) for path, text in todo)
    return dict(sorted(out.items()))
