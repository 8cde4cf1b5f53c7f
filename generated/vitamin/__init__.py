"""Generated backbones of timm's ``vitamin`` family (13 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``vitamin`` itself imports none of them.
"""
