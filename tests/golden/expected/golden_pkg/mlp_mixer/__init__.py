"""Generated backbones of timm's ``mlp_mixer`` family (1 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``mlp_mixer`` itself imports none of them.
"""
