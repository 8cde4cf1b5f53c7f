"""Generated backbones of timm's ``lcnetv2`` family (3 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``lcnetv2`` itself imports none of them.
"""
