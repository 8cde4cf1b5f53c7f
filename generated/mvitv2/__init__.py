"""Generated backbones of timm's ``mvitv2`` family (8 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``mvitv2`` itself imports none of them.
"""
