"""detectron2 backbones generated from timm by d2timm-gen. Do not edit: regenerate.

Importing this package imports no model module. A builder, a backbone class or a
model module is imported on first use, which registers its two builders with
detectron2's ``BACKBONE_REGISTRY``::

    from golden_pkg import add_timm_config, build_resnet50_fpn_backbone
    from golden_pkg import ensure_registered
    ensure_registered(cfg)  # imports the module behind cfg.MODEL.BACKBONE.NAME

9 models; MANIFEST.json lists every file, spec and exclusion.
"""

import importlib
from typing import Dict, List

from .runtime.config import add_timm_config

__all__ = ["MODELS", "BUILDERS", "add_timm_config", "ensure_registered", "model_module"]

#: timm architecture -> its generated module, relative to this package.
MODELS: Dict[str, str] = {
    "toy_crossvit": "crossvit.toy_crossvit",
    "toy_inception": "inception_v3.toy_inception",
    "toy_levit": "levit.toy_levit",
    "toy_mixer": "mlp_mixer.toy_mixer",
    "toy_pit": "pit.toy_pit",
    "toy_resnet": "resnet.toy_resnet",
    "toy_sequencer": "sequencer.toy_sequencer",
    "toy_swin": "swin_transformer.toy_swin",
    "toy_vit": "vision_transformer.toy_vit",
}

#: Registry name (and class name) -> timm architecture.
BUILDERS: Dict[str, str] = {}
for _model in MODELS:
    BUILDERS[f"build_{_model}_backbone"] = _model
    BUILDERS[f"build_{_model}_fpn_backbone"] = _model
CLASSES: Dict[str, str] = {
    "ToyCrossvitBackbone": "toy_crossvit",
    "ToyInceptionBackbone": "toy_inception",
    "ToyLevitBackbone": "toy_levit",
    "ToyMixerBackbone": "toy_mixer",
    "ToyPitBackbone": "toy_pit",
    "ToyResnetBackbone": "toy_resnet",
    "ToySequencerBackbone": "toy_sequencer",
    "ToySwinBackbone": "toy_swin",
    "ToyVitBackbone": "toy_vit",
}


def model_module(model: str):
    """Import (and so register) the generated module of a timm architecture."""
    if model not in MODELS:
        import difflib

        close = difflib.get_close_matches(model, list(MODELS), n=5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise KeyError(f"{model!r} is not in this generated package ({len(MODELS)} models).{hint}")
    return importlib.import_module(f".{MODELS[model]}", __name__)


def ensure_registered(cfg_or_name) -> bool:
    """Import the module behind a registry name or ``cfg.MODEL.BACKBONE.NAME``.

    Returns False, importing nothing, for a name this package does not generate (one of
    detectron2's own backbones, say).
    """
    name = cfg_or_name if isinstance(cfg_or_name, str) else cfg_or_name.MODEL.BACKBONE.NAME
    if name not in BUILDERS:
        return False
    model_module(BUILDERS[name])
    return True


def __getattr__(name: str):
    model = BUILDERS.get(name) or CLASSES.get(name)
    if model is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(model_module(model), name)


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(BUILDERS) | set(CLASSES))
