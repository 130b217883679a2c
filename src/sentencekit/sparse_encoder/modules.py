"""``sentence_transformers.sparse_encoder.modules`` under sentencekit: the same names as ``.models``."""

from __future__ import annotations

from sentencekit.sparse_encoder.models import *  # noqa: F403 (one list of names, kept in .models)
from sentencekit.sparse_encoder.models import __all__ as __all__
