"""Generated backbones of timm's ``mobilenetv3`` family (33 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``mobilenetv3`` itself imports none of them.
"""
