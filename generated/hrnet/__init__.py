"""Generated backbones of timm's ``hrnet`` family (11 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``hrnet`` itself imports none of them.
"""
