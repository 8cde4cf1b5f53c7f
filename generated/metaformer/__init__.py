"""Generated backbones of timm's ``metaformer`` family (18 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``metaformer`` itself imports none of them.
"""
