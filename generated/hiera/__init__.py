"""Generated backbones of timm's ``hiera`` family (8 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``hiera`` itself imports none of them.
"""
