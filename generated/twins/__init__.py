"""Generated backbones of timm's ``twins`` family (6 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``twins`` itself imports none of them.
"""
