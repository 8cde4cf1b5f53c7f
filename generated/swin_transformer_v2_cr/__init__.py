"""Generated backbones of timm's ``swin_transformer_v2_cr`` family (16 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``swin_transformer_v2_cr`` itself imports none of them.
"""
