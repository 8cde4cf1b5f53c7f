"""Generated backbones of timm's ``nextvit`` family (3 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``nextvit`` itself imports none of them.
"""
