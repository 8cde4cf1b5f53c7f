"""Generated backbones of timm's ``naflexvit`` family (14 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``naflexvit`` itself imports none of them.
"""
