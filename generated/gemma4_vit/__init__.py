"""Generated backbones of timm's ``gemma4_vit`` family (4 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``gemma4_vit`` itself imports none of them.
"""
