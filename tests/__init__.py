"""Test suite of d2timm (a package so that ``python -m tests.golden.regenerate`` works)."""
