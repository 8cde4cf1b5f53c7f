"""Format: every generated Python file goes through pinned black, then ``ast.parse``.

A template that renders invalid Python fails here, naming the file, before anything is
written.
"""

from __future__ import annotations

import ast
import json

import black
import yaml

__all__ = ["BLACK_MODE", "FormatError", "format_file"]

#: The one black configuration of generated code. black itself is pinned in
#: requirements/base.txt: another black version may format differently, and the
#: manifest records the version used.
BLACK_MODE = black.Mode(
    target_versions={black.TargetVersion.PY39},
    line_length=100,
    string_normalization=True,
    magic_trailing_comma=True,
)


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
            yaml.safe_load(text)
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
