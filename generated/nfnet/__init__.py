"""Generated backbones of timm's ``nfnet`` family (36 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``nfnet`` itself imports none of them.
"""
