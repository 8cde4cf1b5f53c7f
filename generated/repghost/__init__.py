"""Generated backbones of timm's ``repghost`` family (8 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``repghost`` itself imports none of them.
"""
