"""Generated backbones of timm's ``rexnet`` family (10 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``rexnet`` itself imports none of them.
"""
