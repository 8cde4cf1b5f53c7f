"""Generated backbones of timm's ``convit`` family (3 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``convit`` itself imports none of them.
"""
