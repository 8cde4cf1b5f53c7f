"""Generated backbones of timm's ``starnet`` family (7 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``starnet`` itself imports none of them.
"""
