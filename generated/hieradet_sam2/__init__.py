"""Generated backbones of timm's ``hieradet_sam2`` family (5 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``hieradet_sam2`` itself imports none of them.
"""
