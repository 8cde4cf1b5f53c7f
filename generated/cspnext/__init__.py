"""Generated backbones of timm's ``cspnext`` family (5 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``cspnext`` itself imports none of them.
"""
