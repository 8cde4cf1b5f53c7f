"""Generated backbones of timm's ``byobnet`` family (53 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``byobnet`` itself imports none of them.
"""
