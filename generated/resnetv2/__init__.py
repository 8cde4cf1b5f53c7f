"""Generated backbones of timm's ``resnetv2`` family (20 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``resnetv2`` itself imports none of them.
"""
