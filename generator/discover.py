"""Discover: which timm architectures a selection names.

A selection is a list of glob patterns over model names (``resnet*``) and a list of
families (timm's model modules: ``resnet``, ``convnext``, ...). The result is sorted and
every name is validated before anything downstream sees it.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Sequence, Tuple

from .names import UnsafeNameError, check_family, check_identifier

__all__ = ["Catalog", "DiscoveryError", "ModelRef", "load_catalog", "select"]


class DiscoveryError(ValueError):
    """A pattern or family that names no architecture."""


@dataclass(frozen=True, order=True)
class ModelRef:
    name: str
    family: str


@dataclass(frozen=True)
class Catalog:
    """Every architecture timm lists, with its family, and the names timm lists that are
    not safe to generate (kept so that they are reported, not silently dropped)."""

    models: Tuple[ModelRef, ...]
    unsafe: Tuple[Tuple[str, str], ...]  # (name as timm lists it, why it is rejected)

    @property
    def families(self) -> Dict[str, Tuple[str, ...]]:
        out: Dict[str, List[str]] = {}
        for ref in self.models:
            out.setdefault(ref.family, []).append(ref.name)
        return {family: tuple(names) for family, names in sorted(out.items())}


def load_catalog() -> Catalog:
    """Read timm's registry: every architecture and the module (family) defining it."""
    import timm

    models: List[ModelRef] = []
    unsafe: List[Tuple[str, str]] = []
    for module in sorted(timm.list_modules()):
        for name in timm.list_models(module=module):
            try:
                models.append(ModelRef(check_identifier(name), check_family(module)))
            except UnsafeNameError as exc:
                unsafe.append((str(name), str(exc)))
    return catalog_from(models, unsafe)


def catalog_from(models: Iterable[ModelRef], unsafe: Iterable[Tuple[str, str]] = ()) -> Catalog:
    return Catalog(models=tuple(sorted(set(models))), unsafe=tuple(sorted(set(unsafe))))


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word.replace("*", ""), sorted(set(choices)), n=5, cutoff=0.6)
    return f" Did you mean: {', '.join(close)}?" if close else ""


def select(catalog: Catalog, patterns: Sequence[str] = (), families: Sequence[str] = ()) -> Tuple[ModelRef, ...]:
    """The architectures named by any pattern or family, sorted by name.

    A pattern or family that matches nothing raises :class:`DiscoveryError` with close
    names, so a typo never silently generates nothing.
    """
    by_family: Mapping[str, Tuple[str, ...]] = catalog.families
    names = [ref.name for ref in catalog.models]
    chosen = set()
    for family in families:
        if family not in by_family:
            raise DiscoveryError(
                f"no timm family {family!r}.{_suggest(family, by_family)} "
                "Run `d2timm-gen list --families` for all families."
            )
        chosen.update(ref for ref in catalog.models if ref.family == family)
    for pattern in patterns:
        rejected = [reason for name, reason in catalog.unsafe if fnmatch.fnmatchcase(name, pattern)]
        if rejected:
            raise DiscoveryError(f"pattern {pattern!r} matches names that cannot be generated: {'; '.join(rejected)}")
        matched = [ref for ref in catalog.models if fnmatch.fnmatchcase(ref.name, pattern)]
        if not matched:
            raise DiscoveryError(
                f"pattern {pattern!r} matches no timm architecture.{_suggest(pattern, names)} "
                "Run `d2timm-gen list` to see them."
            )
        chosen.update(matched)
    return tuple(sorted(chosen))
