"""Generated backbones of timm's ``mobilevit`` family (10 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``mobilevit`` itself imports none of them.
"""
