"""The one exception tree of sentencekit.

Every error the library raises on purpose is a :class:`SentenceKitError`, and also a subclass of the builtin
exception a caller would already catch::

    SentenceKitError
    ├── ModelNotFoundError (OSError)        a model name or folder was found nowhere; lists where we looked
    ├── ModelFormatError (ValueError)       a model folder exists but its files are missing or malformed
    ├── InvalidInputError (ValueError)      encode()/predict() got None, a non-string, a nested list, ...
    ├── MissingDependencyError (ImportError) an optional extra is not installed; names the pip command
    ├── PackagedModelError (OSError)        downloading, unpacking or verifying a packaged model failed
    ├── IndexCorruptedError (ValueError)    a saved vector index failed its checksum
    ├── CacheError (OSError)                the embedding cache cannot be read or written
    ├── HubError (OSError)                  push_to_hub could not reach or write to the Hugging Face Hub
    └── PoolError (RuntimeError)            a multi-process encoding worker could not start, or died

Messages say what happened and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "CacheError",
    "HubError",
    "IndexCorruptedError",
    "InvalidInputError",
    "MissingDependencyError",
    "ModelFormatError",
    "ModelNotFoundError",
    "PackagedModelError",
    "PoolError",
    "SentenceKitError",
]


class SentenceKitError(Exception):
    """Base class of every error sentencekit raises on purpose."""


class ModelNotFoundError(SentenceKitError, OSError):
    """A model name or path could not be resolved to a folder."""


class ModelFormatError(SentenceKitError, ValueError):
    """A model folder was found but its configuration or weights cannot be read."""


class InvalidInputError(SentenceKitError, ValueError):
    """The texts (or pairs) given to a model are not what it can encode."""


class MissingDependencyError(SentenceKitError, ImportError):
    """An optional dependency is needed for this feature and is not installed."""


class PackagedModelError(SentenceKitError, OSError):
    """Fetching, unpacking or verifying a model published as a Python package failed."""


class IndexCorruptedError(SentenceKitError, ValueError):
    """A saved vector index failed its integrity check."""


class CacheError(SentenceKitError, OSError):
    """The embedding cache could not be used."""


class HubError(SentenceKitError, OSError):
    """Uploading to the Hugging Face Hub failed (offline, unreachable, or refused)."""


class PoolError(SentenceKitError, RuntimeError):
    """A worker of a multi-process encoding pool could not load the model, or died."""
