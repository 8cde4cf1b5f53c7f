"""Generated backbones of timm's ``qwen3_vit`` family (9 models). Do not edit: regenerate.

Each module registers ``build_<model>_backbone`` and ``build_<model>_fpn_backbone`` when
imported; ``qwen3_vit`` itself imports none of them.
"""
