"""d2timm-gen: render explicit detectron2 backbones from timm models.

The build-time tool. Data flows one way through one module per step::

    discover -> introspect -> spec -> render -> formatting -> plan -> write / check

Only :mod:`generator.introspect` creates timm models; :mod:`generator.render` never
imports torch or timm.
"""

__version__ = "0.1.0"
