"""Generated backbones of timm's ``crossvit`` family (11 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``crossvit`` itself imports none of them.
"""
