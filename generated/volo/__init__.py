"""Generated backbones of timm's ``volo`` family (11 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``volo`` itself imports none of them.
"""
