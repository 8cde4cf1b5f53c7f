"""Generated backbones of timm's ``shvit`` family (4 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``shvit`` itself imports none of them.
"""
