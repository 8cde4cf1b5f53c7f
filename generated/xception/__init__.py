"""Generated backbones of timm's ``xception`` family (1 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``xception`` itself imports none of them.
"""
