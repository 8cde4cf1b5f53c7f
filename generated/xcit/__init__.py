"""Generated backbones of timm's ``xcit`` family (28 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``xcit`` itself imports none of them.
"""
