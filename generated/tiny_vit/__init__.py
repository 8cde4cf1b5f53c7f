"""Generated backbones of timm's ``tiny_vit`` family (5 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``tiny_vit`` itself imports none of them.
"""
