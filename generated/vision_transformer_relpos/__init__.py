"""Generated backbones of timm's ``vision_transformer_relpos`` family (14 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``vision_transformer_relpos`` itself imports none of them.
"""
