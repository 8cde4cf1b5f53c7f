"""Generated backbones of timm's ``visformer`` family (2 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``visformer`` itself imports none of them.
"""
