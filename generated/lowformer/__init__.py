"""Generated backbones of timm's ``lowformer`` family (8 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``lowformer`` itself imports none of them.
"""
