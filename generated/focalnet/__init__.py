"""Generated backbones of timm's ``focalnet`` family (12 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``focalnet`` itself imports none of them.
"""
