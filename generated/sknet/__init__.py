"""Generated backbones of timm's ``sknet`` family (5 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``sknet`` itself imports none of them.
"""
