"""Generated backbones of timm's ``pvt_v2`` family (7 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``pvt_v2`` itself imports none of them.
"""
