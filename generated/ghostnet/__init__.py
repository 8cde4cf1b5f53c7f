"""Generated backbones of timm's ``ghostnet`` family (10 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``ghostnet`` itself imports none of them.
"""
