"""Request bodies of the HTTP API, and the checks pydantic cannot phrase clearly.

Bodies are strict (no ``"5"`` for ``5``) and closed (an unknown field such as ``"dimension"`` is an error, so
a typo is not silently ignored). Fields that accept several shapes (``input``, ``documents``) are typed
``Any`` here and checked by :func:`parse_embedding_input` / :func:`parse_documents`, whose messages name the
offending item.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sentencekit.errors import InvalidInputError
from sentencekit.server.errors import RequestTooLargeError

__all__ = [
    "EmbeddingRequest",
    "RerankRequest",
    "SearchRequest",
    "SimilarityRequest",
    "parse_documents",
    "parse_embedding_input",
    "parse_texts",
]

_STRICT = ConfigDict(extra="forbid", strict=True)


class EmbeddingRequest(BaseModel):
    """``POST /v1/embeddings``: the OpenAI schema, plus ``prompt_name``."""

    model_config = _STRICT

    input: Any = Field(
        description="A string, a list of strings, a list of token ids, or a list of lists of token ids."
    )
    model: str | None = Field(None, description="A served model name (see /v1/models); default: the one.")
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, description="Keep the first N dimensions and renormalize.")
    user: str | None = Field(None, description="Accepted for compatibility; not used.")
    prompt_name: str | None = Field(None, description="A prompt of the model, e.g. 'query'.")


class RerankRequest(BaseModel):
    """``POST /v1/rerank``: the Cohere / Jina / text-embeddings-inference style."""

    model_config = _STRICT

    query: str
    documents: Any = Field(description='A list of strings, or of {"text": ...} objects.')
    model: str | None = None
    top_n: int | None = Field(None, ge=1, description="Return only the N best documents.")
    return_documents: bool = False
    raw_scores: bool = Field(False, description="Logits instead of the model's activation (probabilities).")


class SimilarityRequest(BaseModel):
    """``POST /v1/similarity``: every text of ``sentences1`` against every text of ``sentences2``."""

    model_config = _STRICT

    sentences1: Any = Field(description="A string or a list of strings.")
    sentences2: Any = Field(description="A string or a list of strings.")
    model: str | None = None
    prompt_name: str | None = None


class SearchRequest(BaseModel):
    """``POST /v1/search``: nearest items of the loaded index for one or more queries."""

    model_config = _STRICT

    query: Any = Field(description="A string or a list of strings.")
    k: int = Field(10, ge=1)
    filter: dict[str, Any] | None = Field(None, description="Metadata fields that must be equal.")
    model: str | None = None
    prompt_name: str | None = None


def _check_count(n: int, max_inputs: int, field: str) -> None:
    if n == 0:
        raise InvalidInputError(f"{field} is an empty list; send at least one item.")
    if n > max_inputs:
        raise RequestTooLargeError(
            f"{field} has {n} items; this server takes at most {max_inputs} per request. Split the request."
        )


def parse_texts(value: Any, field: str, max_inputs: int) -> list[str]:
    """A string or a non-empty list of non-empty strings, as a list.

    Raises:
        InvalidInputError: Naming ``field`` and the first bad item.
        RequestTooLargeError: For more than ``max_inputs`` items.
    """
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list):
        raise InvalidInputError(f"{field} must be a string or a list of strings, got {_kind(value)}.")
    _check_count(len(texts), max_inputs, field)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidInputError(f"{field}[{i}] must be a string, got {_kind(text)}.")
        if not text:
            where = field if isinstance(value, str) else f"{field}[{i}]"
            raise InvalidInputError(f"{where} is an empty string; send some text.")
    return texts


def _is_token(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def parse_embedding_input(value: Any, max_inputs: int) -> tuple[list[str] | None, list[list[int]] | None]:
    """Split the four accepted shapes of ``input`` into texts or token-id lists (exactly one is not None).

    Raises:
        InvalidInputError: For any other shape, an empty string or list, or a bad item (its index named).
        RequestTooLargeError: For more than ``max_inputs`` items.
    """
    if isinstance(value, list) and value and all(_is_token(x) for x in value):
        return None, [value]
    if isinstance(value, list) and value and isinstance(value[0], list):
        _check_count(len(value), max_inputs, "input")
        for i, ids in enumerate(value):
            if not isinstance(ids, list) or not ids:
                raise InvalidInputError(
                    f"input[{i}] must be a non-empty list of token ids, got {_kind(ids)}."
                )
            bad = next((j for j, x in enumerate(ids) if not _is_token(x)), None)
            if bad is not None:
                raise InvalidInputError(
                    f"input[{i}][{bad}] must be an integer token id, got {_kind(ids[bad])}."
                )
        return None, value
    if not isinstance(value, (str, list)):
        raise InvalidInputError(
            "input must be a string, a list of strings, a list of token ids or a list of lists of token ids; "
            f"got {_kind(value)}."
        )
    return parse_texts(value, "input", max_inputs), None


def parse_documents(value: Any, max_inputs: int) -> list[str]:
    """Rerank ``documents``: strings, or ``{"text": str}`` objects (Cohere's older form), as strings."""
    if not isinstance(value, list):
        raise InvalidInputError(f"documents must be a list of strings, got {_kind(value)}.")
    _check_count(len(value), max_inputs, "documents")
    texts = []
    for i, doc in enumerate(value):
        if isinstance(doc, dict) and isinstance(doc.get("text"), str):
            doc = doc["text"]
        if not isinstance(doc, str):
            raise InvalidInputError(
                f'documents[{i}] must be a string or {{"text": "..."}}, got {_kind(doc)}.'
            )
        texts.append(doc)
    return texts


def _kind(value: Any) -> str:
    """A short description of a JSON value's type for error messages."""
    names = {str: "a string", bool: "a boolean", int: "an integer", float: "a number", list: "a list"}
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    return names.get(type(value), type(value).__name__)
