"""Generated backbones of timm's ``maxxvit`` family (58 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``maxxvit`` itself imports none of them.
"""
