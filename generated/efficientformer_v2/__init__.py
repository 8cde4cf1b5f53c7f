"""Generated backbones of timm's ``efficientformer_v2`` family (4 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``efficientformer_v2`` itself imports none of them.
"""
