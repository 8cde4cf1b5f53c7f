"""Generated backbones of timm's ``pnasnet`` family (1 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``pnasnet`` itself imports none of them.
"""
