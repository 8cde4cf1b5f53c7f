"""Generated backbones of timm's ``mambaout`` family (11 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``mambaout`` itself imports none of them.
"""
