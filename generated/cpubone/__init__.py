"""Generated backbones of timm's ``cpubone`` family (9 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``cpubone`` itself imports none of them.
"""
