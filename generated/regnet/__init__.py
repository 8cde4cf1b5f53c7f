"""Generated backbones of timm's ``regnet`` family (36 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``regnet`` itself imports none of them.
"""
