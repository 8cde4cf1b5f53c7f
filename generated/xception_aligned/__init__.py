"""Generated backbones of timm's ``xception_aligned`` family (5 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``xception_aligned`` itself imports none of them.
"""
