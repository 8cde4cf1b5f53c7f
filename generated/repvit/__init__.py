"""Generated backbones of timm's ``repvit`` family (8 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``repvit`` itself imports none of them.
"""
