"""Generated backbones of timm's ``eva`` family (65 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``eva`` itself imports none of them.
"""
