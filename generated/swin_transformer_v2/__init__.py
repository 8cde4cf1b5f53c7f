"""Generated backbones of timm's ``swin_transformer_v2`` family (12 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``swin_transformer_v2`` itself imports none of them.
"""
