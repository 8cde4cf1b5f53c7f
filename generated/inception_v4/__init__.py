"""Generated backbones of timm's ``inception_v4`` family (1 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``inception_v4`` itself imports none of them.
"""
