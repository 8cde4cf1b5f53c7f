"""Generated backbones of timm's ``swin_transformer`` family (9 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``swin_transformer`` itself imports none of them.
"""
