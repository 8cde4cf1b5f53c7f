"""Generated backbones of timm's ``levit`` family (20 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``levit`` itself imports none of them.
"""
