"""The ``sentencekit`` command line.

``sentencekit.cli.main`` builds the argument parser from the command modules it lists; each command module
(``models``, ...) exposes ``add_parser(subparsers)`` and keeps heavy imports inside its handler, so that
``sentencekit --help`` stays fast and never imports torch.
"""

from __future__ import annotations

__all__: list[str] = []
