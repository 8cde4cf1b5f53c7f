"""Generated backbones of timm's ``deit`` family (16 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``deit`` itself imports none of them.
"""
