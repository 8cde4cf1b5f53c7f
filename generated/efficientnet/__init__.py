"""Generated backbones of timm's ``efficientnet`` family (115 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``efficientnet`` itself imports none of them.
"""
