"""Generated backbones of timm's ``vision_transformer_sam`` family (4 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``vision_transformer_sam`` itself imports none of them.
"""
