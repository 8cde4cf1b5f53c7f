"""Validation of every name that travels from timm into generated code.

A timm model name becomes a module name, a class name, a registry name and a file
name. It is accepted only if it matches a strict pattern; anything else (a custom model
registered under a name holding quotes, dots or code) is rejected before rendering.
"""

from __future__ import annotations

import keyword
import re

__all__ = [
    "IDENTIFIER_PATTERN",
    "MODULE_PATH_PATTERN",
    "RESERVED_FAMILIES",
    "UnsafeNameError",
    "check_family",
    "check_identifier",
    "check_module_path",
    "check_param_pattern",
    "check_text",
    "class_name",
    "safe_text",
]

#: A timm architecture or family name: lower-case ASCII, digits and underscores,
#: starting with a letter. Every name timm ships matches it.
IDENTIFIER_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,99}\Z")

#: A dotted module path inside a model (``layer1``, ``stages.0``, ``blocks.11.norm``).
MODULE_PATH_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z0-9_]{1,64}){0,15}\Z")

#: A state-dict key pattern: a module path whose numbered parts may be ``*``
#: (``blocks.*.attn.relative_position_bias_table``).
PARAM_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}(\.([A-Za-z0-9_]{1,64}|\*)){0,15}\Z")

#: Names the generated package uses for itself; a family may not take them.
RESERVED_FAMILIES = frozenset({"runtime", "registry", "configs", "tests"})


class UnsafeNameError(ValueError):
    """A name from timm that cannot safely become part of generated code."""


def check_identifier(name: object, what: str = "model name") -> str:
    """Return ``name`` if it is a safe identifier, else raise :class:`UnsafeNameError`."""
    if not isinstance(name, str) or not IDENTIFIER_PATTERN.match(name) or keyword.iskeyword(name):
        raise UnsafeNameError(
            f"unsafe {what} {name!r}: it must match {IDENTIFIER_PATTERN.pattern!r} "
            "(lower-case letters, digits and underscores, starting with a letter)"
        )
    return name


def check_family(name: object) -> str:
    check_identifier(name, "family name")
    if name in RESERVED_FAMILIES:
        raise UnsafeNameError(
            f"family name {name!r} is reserved by the generated package "
            f"(reserved: {', '.join(sorted(RESERVED_FAMILIES))})"
        )
    return name  # type: ignore[return-value]


def check_module_path(path: object) -> str:
    if not isinstance(path, str) or not MODULE_PATH_PATTERN.match(path):
        raise UnsafeNameError(
            f"unsafe module path {path!r}: it must match {MODULE_PATH_PATTERN.pattern!r}"
        )
    return path


def check_param_pattern(pattern: object) -> str:
    if not isinstance(pattern, str) or not PARAM_PATTERN.match(pattern):
        raise UnsafeNameError(f"unsafe parameter pattern {pattern!r}: it must match {PARAM_PATTERN.pattern!r}")
    return pattern


#: Free text that reaches generated code (docstrings, YAML comments): a reason measured by
#: introspection. No quotes, backslashes or newlines, so it cannot end a string or comment.
TEXT_PATTERN = re.compile(r"[A-Za-z0-9 _.,:;()\[\]{}=+*/<>%#@!?-]{0,400}\Z")


def safe_text(text: str, limit: int = 400) -> str:
    """``text`` made safe for :data:`TEXT_PATTERN`: other characters become spaces."""
    cleaned = re.sub(r"[^A-Za-z0-9 _.,:;()\[\]{}=+*/<>%#@!?-]", " ", str(text))
    return " ".join(cleaned.split())[:limit]


def check_text(text: object, what: str = "text") -> str:
    if not isinstance(text, str) or not TEXT_PATTERN.match(text):
        raise UnsafeNameError(f"unsafe {what} {text!r}: it must match {TEXT_PATTERN.pattern!r}")
    return text


def class_name(model: str) -> str:
    """``resnet50`` -> ``Resnet50Backbone``; ``tf_efficientnet_b0`` -> ``TfEfficientnetB0Backbone``."""
    check_identifier(model)
    return "".join(part[:1].upper() + part[1:] for part in model.split("_") if part) + "Backbone"
