"""Generated backbones of timm's ``convnext`` family (31 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``convnext`` itself imports none of them.
"""
