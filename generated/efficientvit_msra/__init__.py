"""Generated backbones of timm's ``efficientvit_msra`` family (6 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``efficientvit_msra`` itself imports none of them.
"""
