"""Registration of generated builders in detectron2's ``BACKBONE_REGISTRY``."""

import inspect
import os
from typing import Callable, TypeVar

from detectron2.modeling import BACKBONE_REGISTRY

__all__ = ["register_backbone"]

Builder = TypeVar("Builder", bound=Callable)


def _source(fn: Callable) -> str:
    try:
        return os.path.realpath(inspect.getfile(fn))
    except TypeError:
        return repr(fn)


def register_backbone(fn: Builder) -> Builder:
    """Register ``fn`` under its own name, once.

    detectron2's registry refuses a name registered twice, so a generated module that
    ends up imported under two module paths (``generated.resnet.resnet50`` and, through
    a second ``sys.path`` entry, ``resnet.resnet50``) would crash the second import. The
    same builder from the same file is accepted again; a different builder under the
    same name is an error naming both.
    """
    name = fn.__name__
    if name in BACKBONE_REGISTRY:
        existing = BACKBONE_REGISTRY.get(name)
        if _source(existing) == _source(fn) and existing.__qualname__ == fn.__qualname__:
            return existing
        raise ValueError(
            f"backbone {name!r} is already registered by {existing.__module__} "
            f"({_source(existing)}); {fn.__module__} ({_source(fn)}) defines it too. "
            "Two generated packages define the same model: import only one of them."
        )
    BACKBONE_REGISTRY.register(fn)
    return fn
