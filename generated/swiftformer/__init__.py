"""Generated backbones of timm's ``swiftformer`` family (4 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``swiftformer`` itself imports none of them.
"""
