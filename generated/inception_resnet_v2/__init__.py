"""Generated backbones of timm's ``inception_resnet_v2`` family (1 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``inception_resnet_v2`` itself imports none of them.
"""
