"""Token ids of many texts in little memory: tokenized in chunks, kept as one flat int32 array per field.

A fast tokenizer's ``BatchEncoding`` keeps, per token, the id, the token's string, its character offsets,
type and mask entries, and the ids again as Python ints (about 36 bytes each): a few hundred bytes per token
in all. For 100,000 sentences that is hundreds of MB alive for the whole ``encode`` call. Here each chunk's
encoding is reduced to its ids (4 bytes per token) and dropped before the next chunk is tokenized.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["CHUNK_TEXTS", "RaggedIds", "TokenizedTexts", "tokenize_in_chunks"]

# Texts per tokenizer call: large enough for the tokenizer's own batching, small enough that one chunk's
# BatchEncoding stays a few MB.
CHUNK_TEXTS = 4096


class RaggedIds(Sequence[np.ndarray]):
    """Variable-length id rows stored flat: ``ids[offsets[i]:offsets[i + 1]]`` is row ``i``.

    Indexing a row returns an ``int32`` NumPy view (``len``, iteration and ``torch.tensor`` work on it as on
    a list of ints).
    """

    __slots__ = ("flat", "offsets")

    def __init__(self, flat: np.ndarray, offsets: np.ndarray) -> None:
        self.flat = flat
        self.offsets = offsets

    @classmethod
    def from_lists(cls, rows: Sequence[Sequence[int]]) -> RaggedIds:
        """Pack Python id lists."""
        lengths = np.fromiter((len(row) for row in rows), dtype=np.int64, count=len(rows))
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.fromiter((t for row in rows for t in row), dtype=np.int32, count=int(offsets[-1]))
        return cls(flat, offsets)

    @classmethod
    def concat(cls, parts: Sequence[RaggedIds]) -> RaggedIds:
        """Join several packs, rows in order."""
        if len(parts) == 1:
            return parts[0]
        flat = np.concatenate([p.flat for p in parts])
        offsets = [np.zeros(1, dtype=np.int64)]
        base = 0
        for part in parts:
            offsets.append(part.offsets[1:] + base)
            base += int(part.offsets[-1])
        return cls(flat, np.concatenate(offsets))

    def lengths(self) -> np.ndarray:
        """Length of each row."""
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        i = int(index)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"row {index} out of range for {len(self)} rows")
        return self.flat[self.offsets[i] : self.offsets[i + 1]]

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.flat[self.offsets[i] : self.offsets[i + 1]]


@dataclass(frozen=True)
class TokenizedTexts:
    """Unpadded token ids of many inputs, ready to be sorted by length and collated into batches.

    Attributes:
        input_ids: One id row per input.
        token_type_ids: Segment ids per input when the tokenizer makes them, else ``None``.
        num_truncated: How many inputs were cut at the length limit.
    """

    input_ids: RaggedIds
    token_type_ids: RaggedIds | None
    num_truncated: int

    def lengths(self) -> list[int]:
        """Token count of each input."""
        lengths: list[int] = self.input_ids.lengths().tolist()
        return lengths


def tokenize_in_chunks(
    call: Callable[[int, int], Any], count: int, with_token_types: bool, chunk: int = CHUNK_TEXTS
) -> TokenizedTexts:
    """Tokenize ``count`` inputs ``chunk`` at a time and keep only their ids (and segment ids).

    Args:
        call: ``call(start, stop)`` tokenizes inputs ``start:stop`` and returns the tokenizer's
            ``BatchEncoding`` (unpadded; truncation as the caller wants it).
        count: Number of inputs.
        with_token_types: Also keep ``token_type_ids``.
        chunk: Inputs per tokenizer call.

    Returns:
        The ids, the segment ids (or ``None``) and how many inputs were truncated (inputs whose encoding
        has overflowing tokens).
    """
    ids: list[RaggedIds] = []
    types: list[RaggedIds] | None = [] if with_token_types else None
    truncated = 0
    for start in range(0, count, chunk):
        enc = call(start, min(count, start + chunk))
        truncated += sum(1 for e in getattr(enc, "encodings", None) or [] if e.overflowing)
        ids.append(RaggedIds.from_lists(enc["input_ids"]))
        segments = enc.get("token_type_ids") if types is not None else None
        if segments is None:  # a tokenizer that makes no segment ids
            types = None
        elif types is not None:
            types.append(RaggedIds.from_lists(segments))
        del enc, segments
    return TokenizedTexts(_join(ids), _join(types) if types is not None else None, truncated)


def _join(parts: list[RaggedIds]) -> RaggedIds:
    if not parts:
        return RaggedIds(np.zeros(0, dtype=np.int32), np.zeros(1, dtype=np.int64))
    return RaggedIds.concat(parts)
