"""Generated backbones of timm's ``efficientvit_mit`` family (7 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``efficientvit_mit`` itself imports none of them.
"""
