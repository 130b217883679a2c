"""Type aliases and string enums shared across sentencekit. Imports nothing heavy."""

from __future__ import annotations

from enum import Enum

__all__ = [
    "BatchSamplers",
    "MultiDatasetBatchSamplers",
    "OutputValue",
    "PoolingMode",
    "Precision",
    "SimilarityFunction",
]


class _StrEnum(str, Enum):
    """A str-valued Enum whose members compare equal to their values (Python 3.10 has no StrEnum)."""

    def __str__(self) -> str:
        return str(self.value)

    @classmethod
    def parse(cls, value: str | _StrEnum) -> _StrEnum:
        """Return the member for ``value``, raising ``ValueError`` that lists the valid values."""
        try:
            return cls(value)
        except ValueError:
            valid = ", ".join(repr(m.value) for m in cls)
            raise ValueError(f"{value!r} is not a valid {cls.__name__}; use one of {valid}") from None


class SimilarityFunction(_StrEnum):
    """How two embeddings are compared (same names as sentence-transformers)."""

    COSINE = "cosine"
    DOT_PRODUCT = "dot"
    DOT = "dot"
    EUCLIDEAN = "euclidean"
    MANHATTAN = "manhattan"

    @staticmethod
    def possible_values() -> list[str]:
        """The accepted string values."""
        return [m.value for m in SimilarityFunction]


class Precision(_StrEnum):
    """Output precision of ``encode``; all but float32 go through ``quantize_embeddings``."""

    FLOAT32 = "float32"
    INT8 = "int8"
    UINT8 = "uint8"
    BINARY = "binary"
    UBINARY = "ubinary"


class PoolingMode(_StrEnum):
    """How token embeddings become one sentence embedding."""

    CLS = "cls"
    MEAN = "mean"
    MAX = "max"
    MEAN_SQRT_LEN_TOKENS = "mean_sqrt_len_tokens"
    WEIGHTED_MEAN = "weightedmean"
    LAST_TOKEN = "lasttoken"


class OutputValue(_StrEnum):
    """What ``encode(output_value=...)`` returns per text."""

    SENTENCE_EMBEDDING = "sentence_embedding"
    TOKEN_EMBEDDINGS = "token_embeddings"


class BatchSamplers(_StrEnum):
    """How a trainer cuts one dataset into batches (``batch_sampler=`` of the training arguments).

    ``NO_DUPLICATES_HASHED`` is the reference's memory-saving variant of ``NO_DUPLICATES``; sentencekit's
    ``no_duplicates`` sampler already compares texts through a set, so both run the same sampler.
    """

    BATCH_SAMPLER = "batch_sampler"
    NO_DUPLICATES = "no_duplicates"
    NO_DUPLICATES_HASHED = "no_duplicates_hashed"
    GROUP_BY_LABEL = "group_by_label"


class MultiDatasetBatchSamplers(_StrEnum):
    """How a trainer interleaves the batches of several datasets (``multi_dataset_batch_sampler=``)."""

    ROUND_ROBIN = "round_robin"
    PROPORTIONAL = "proportional"
