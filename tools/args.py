"""Command-line helpers shared by the tools' scripts."""

from __future__ import annotations

import argparse


def script_parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser whose description is the first paragraph of a script's
    docstring ``doc`` and whose epilog is the rest, as written."""
    description, _, epilog = doc.partition("\n\n")
    return argparse.ArgumentParser(
        description=description, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def image_size(text: str) -> "tuple[int, int]":
    """An ``argparse`` type for ``HEIGHTxWIDTH`` (``512x672``)."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give HEIGHTxWIDTH, e.g. 512x672") from None
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: sizes must be positive")
    return height, width
