"""Generated backbones of timm's ``csatv2`` family (2 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``csatv2`` itself imports none of them.
"""
