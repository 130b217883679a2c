"""``InputExample``: one training row for the ``fit`` API (texts and a label), as the tutorials write it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["InputExample"]


@dataclass
class InputExample:
    """One training example: its texts, in column order, and a label.

    ``fit`` tokenizes each text position as one column: ``texts=[anchor, positive]`` gives the loss two
    feature batches. The label becomes a tensor (``int`` labels a ``long`` tensor, ``float`` scores a
    ``float`` one); losses that need no label (``MultipleNegativesRankingLoss``) ignore it.

    Attributes:
        guid: An identifier of your choosing; not used in training.
        texts: The texts of the example (a pair, a triplet, ...).
        label: Class id or similarity score; 0 when the loss needs none.

    Example:
        >>> InputExample(texts=["A man is eating.", "Someone eats."], label=0.9)
        InputExample(guid='', texts=['A man is eating.', 'Someone eats.'], label=0.9)
    """

    guid: str = ""
    texts: list[str] = field(default_factory=list)
    label: Any = 0

    def __str__(self) -> str:
        return f"<InputExample> label: {self.label}, texts: {'; '.join(map(str, self.texts))}"
