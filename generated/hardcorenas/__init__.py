"""Generated backbones of timm's ``hardcorenas`` family (6 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``hardcorenas`` itself imports none of them.
"""
