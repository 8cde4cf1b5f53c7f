"""Generated backbones of timm's ``davit`` family (8 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``davit`` itself imports none of them.
"""
