"""Generated backbones of timm's ``cait`` family (10 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``cait`` itself imports none of them.
"""
