"""Jinja templates of d2timm-gen, shipped as package data (``generator.templates``)."""
