"""Generated backbones of timm's ``cspnet`` family (23 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``cspnet`` itself imports none of them.
"""
