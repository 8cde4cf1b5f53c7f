"""Generated backbones of timm's ``tnt`` family (3 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``tnt`` itself imports none of them.
"""
