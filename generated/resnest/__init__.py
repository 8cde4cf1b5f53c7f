"""Generated backbones of timm's ``resnest`` family (8 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``resnest`` itself imports none of them.
"""
