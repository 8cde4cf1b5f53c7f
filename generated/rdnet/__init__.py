"""Generated backbones of timm's ``rdnet`` family (4 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``rdnet`` itself imports none of them.
"""
