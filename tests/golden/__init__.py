"""Golden files of the renderer: fixed facts in ``specs/``, rendered files in ``expected/``.

Rewrite ``expected/`` with ``make goldens`` (``python -m tests.golden.regenerate``) after
a deliberate template change, and review the diff.
"""
