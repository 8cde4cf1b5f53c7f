"""Generated backbones of timm's ``dla`` family (12 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``dla`` itself imports none of them.
"""
