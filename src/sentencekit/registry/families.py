"""Model families matched by Hub id pattern, with the query/document prompts their authors trained them with.

:data:`FAMILIES` is the table; :func:`find_family` finds the family of a Hub id, a bare name, or a local
folder (a Hugging Face cache path by the id it encodes, another folder by its own name). Nothing here reads
the environment or touches the file system.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from sentencekit.registry.short_names import expand_model_name

__all__ = [
    "FAMILIES",
    "ModelFamily",
    "find_family",
]


@dataclass(frozen=True)
class ModelFamily:
    """A group of models that share how they should be prompted.

    Attributes:
        name: Short label, unique in :data:`FAMILIES`.
        patterns: Shell-style patterns (``fnmatch``) on lower-case Hub ids, e.g. ``"baai/bge-*-en-v1.5"``.
        models: Canonical Hub ids of well-known members; each must match one of ``patterns``.
        query_prompt: Text put before every query, or None when queries are encoded as they are.
        document_prompt: Text put before every document, or None.
        query_task: For models that select an adapter per task (jina-embeddings-v3), the query task name.
        document_task: The document task name of such models.
        prompt_names: The names the model's own ``config_sentence_transformers.json`` uses for the query and
            the document prompt (``encode(prompt_name=...)``).
        needs_prompts: True when retrieval quality drops clearly without the prompts; loaders may warn when
            such a model is used for retrieval without them.

    """

    name: str
    patterns: tuple[str, ...]
    models: tuple[str, ...] = ()
    query_prompt: str | None = None
    document_prompt: str | None = None
    query_task: str | None = None
    document_task: str | None = None
    # sentence-transformers' encode_query / encode_document look these names up first
    prompt_names: tuple[str, str] = ("query", "document")
    needs_prompts: bool = False

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("ModelFamily.name must not be empty")
        if not self.patterns:
            raise ValueError(f"ModelFamily {self.name!r} needs at least one Hub id pattern")
        for pattern in self.patterns:
            if pattern != pattern.lower() or pattern.count("/") != 1:
                raise ValueError(
                    f"ModelFamily {self.name!r}: pattern {pattern!r} must be a lower-case 'org/name' pattern"
                )
        for model in self.models:
            if not self.matches(model):
                raise ValueError(f"ModelFamily {self.name!r}: model {model!r} matches none of its patterns")
        for label, prompt in (("query_prompt", self.query_prompt), ("document_prompt", self.document_prompt)):
            if prompt is not None and not prompt:
                raise ValueError(f"ModelFamily {self.name!r}: {label} is empty; use None for 'no prompt'")
        if self.needs_prompts and self.query_prompt is None and self.query_task is None:
            raise ValueError(f"ModelFamily {self.name!r} sets needs_prompts but has no query prompt or task")

    @property
    def prompts(self) -> dict[str, str]:
        """The prompts as ``config_sentence_transformers.json`` would hold them (only those that are set)."""
        query_name, document_name = self.prompt_names
        pairs = ((query_name, self.query_prompt), (document_name, self.document_prompt))
        return {name: prompt for name, prompt in pairs if prompt is not None}

    def matches(self, model_id: str) -> bool:
        """Whether the Hub id ``model_id`` belongs to this family (case-insensitive)."""
        lowered = model_id.lower()
        return any(fnmatchcase(lowered, pattern) for pattern in self.patterns)

    def matches_folder_name(self, folder_name: str) -> bool:
        """Whether a local folder called ``folder_name`` holds a member, judged by the name part of a pattern.

        Patterns whose name part is only ``"*"`` (``"sentence-transformers/*"``) say nothing about a folder
        name, so they never match here.
        """
        lowered = folder_name.lower()
        return any(
            fnmatchcase(lowered, name_part)
            for name_part in (pattern.split("/", 1)[1] for pattern in self.patterns)
            if name_part.strip("*")
        )


_SEARCH_PASSAGES = "Represent this sentence for searching relevant passages: "
_WEB_SEARCH_INSTRUCT = (
    "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery: "
)

# Looked up in order; the first family that matches wins, and a test checks that every listed model is claimed
# by its own family. Prompts are those in each model's card / config_sentence_transformers.json.
FAMILIES: tuple[ModelFamily, ...] = (
    ModelFamily(
        name="sentence-transformers",
        patterns=("sentence-transformers/*",),
        models=(
            "sentence-transformers/all-MiniLM-L6-v2",
            "sentence-transformers/all-MiniLM-L12-v2",
            "sentence-transformers/all-mpnet-base-v2",
            "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2",
            "sentence-transformers/multi-qa-MiniLM-L6-cos-v1",
        ),
    ),
    ModelFamily(
        name="bge-en-v1.5",
        patterns=("baai/bge-*-en-v1.5", "baai/bge-*-en"),
        models=("BAAI/bge-small-en-v1.5", "BAAI/bge-base-en-v1.5", "BAAI/bge-large-en-v1.5"),
        query_prompt=_SEARCH_PASSAGES,
        needs_prompts=True,
    ),
    ModelFamily(
        name="bge-zh-v1.5",
        patterns=("baai/bge-*-zh-v1.5", "baai/bge-*-zh"),
        models=("BAAI/bge-small-zh-v1.5", "BAAI/bge-base-zh-v1.5", "BAAI/bge-large-zh-v1.5"),
        query_prompt="为这个句子生成表示以用于检索相关文章\uff1a",  # ends in a full-width colon
        needs_prompts=True,
    ),
    ModelFamily(name="bge-m3", patterns=("baai/bge-m3",), models=("BAAI/bge-m3",)),
    ModelFamily(
        name="e5",
        patterns=(
            "intfloat/e5-*-v2",
            "intfloat/e5-small",
            "intfloat/e5-base",
            "intfloat/e5-large",
            "intfloat/multilingual-e5-small",
            "intfloat/multilingual-e5-base",
            "intfloat/multilingual-e5-large",
        ),
        models=(
            "intfloat/e5-small-v2",
            "intfloat/e5-base-v2",
            "intfloat/e5-large-v2",
            "intfloat/multilingual-e5-small",
            "intfloat/multilingual-e5-base",
            "intfloat/multilingual-e5-large",
        ),
        query_prompt="query: ",
        document_prompt="passage: ",
        needs_prompts=True,
    ),
    ModelFamily(
        name="e5-instruct",
        patterns=("intfloat/multilingual-e5-large-instruct", "intfloat/e5-mistral-7b-instruct"),
        models=("intfloat/multilingual-e5-large-instruct", "intfloat/e5-mistral-7b-instruct"),
        query_prompt=_WEB_SEARCH_INSTRUCT,
        needs_prompts=True,
    ),
    ModelFamily(
        name="nomic-embed-text",
        patterns=("nomic-ai/nomic-embed-text-v1*", "nomic-ai/nomic-embed-text-v2*"),
        models=(
            "nomic-ai/nomic-embed-text-v1",
            "nomic-ai/nomic-embed-text-v1.5",
            "nomic-ai/nomic-embed-text-v2-moe",
        ),
        query_prompt="search_query: ",
        document_prompt="search_document: ",
        needs_prompts=True,
    ),
    ModelFamily(
        name="gte-v1.5",
        patterns=(
            "alibaba-nlp/gte-*-en-v1.5",
            "alibaba-nlp/gte-multilingual-base",
            "alibaba-nlp/gte-modernbert-*",
        ),
        models=(
            "Alibaba-NLP/gte-base-en-v1.5",
            "Alibaba-NLP/gte-large-en-v1.5",
            "Alibaba-NLP/gte-multilingual-base",
        ),
    ),
    ModelFamily(
        name="gte-qwen-instruct",
        patterns=("alibaba-nlp/gte-qwen*-instruct",),
        models=("Alibaba-NLP/gte-Qwen2-1.5B-instruct", "Alibaba-NLP/gte-Qwen2-7B-instruct"),
        query_prompt=_WEB_SEARCH_INSTRUCT,
        needs_prompts=True,
    ),
    ModelFamily(
        name="gte",
        patterns=("thenlper/gte-*",),
        models=("thenlper/gte-small", "thenlper/gte-base", "thenlper/gte-large"),
    ),
    ModelFamily(
        name="mxbai-embed",
        patterns=("mixedbread-ai/mxbai-embed-large-v1",),
        models=("mixedbread-ai/mxbai-embed-large-v1",),
        query_prompt=_SEARCH_PASSAGES,
        needs_prompts=True,
    ),
    ModelFamily(
        name="jina-embeddings-v3",
        patterns=("jinaai/jina-embeddings-v3",),
        models=("jinaai/jina-embeddings-v3",),
        query_prompt="Represent the query for retrieving evidence documents: ",
        document_prompt="Represent the document for retrieval: ",
        query_task="retrieval.query",
        document_task="retrieval.passage",
        prompt_names=("retrieval.query", "retrieval.passage"),
        needs_prompts=True,
    ),
    ModelFamily(
        name="arctic-embed-v2",
        patterns=("snowflake/snowflake-arctic-embed-*-v2.0",),
        models=("Snowflake/snowflake-arctic-embed-m-v2.0", "Snowflake/snowflake-arctic-embed-l-v2.0"),
        query_prompt="query: ",
        needs_prompts=True,
    ),
    ModelFamily(
        name="arctic-embed",
        patterns=(
            "snowflake/snowflake-arctic-embed-xs",
            "snowflake/snowflake-arctic-embed-s",
            "snowflake/snowflake-arctic-embed-m",
            "snowflake/snowflake-arctic-embed-m-v1.5",
            "snowflake/snowflake-arctic-embed-m-long",
            "snowflake/snowflake-arctic-embed-l",
        ),
        models=(
            "Snowflake/snowflake-arctic-embed-xs",
            "Snowflake/snowflake-arctic-embed-s",
            "Snowflake/snowflake-arctic-embed-m",
            "Snowflake/snowflake-arctic-embed-m-v1.5",
            "Snowflake/snowflake-arctic-embed-l",
        ),
        query_prompt=_SEARCH_PASSAGES,
        needs_prompts=True,
    ),
)

_HF_CACHE_FOLDER = re.compile(r"^models--([^/\\]+?)--([^/\\]+)$")


def _hub_ids_in(model_id_or_path: str) -> list[str]:
    """List the Hub ids that a name or a path may stand for, most specific first."""
    text = model_id_or_path.rstrip("/\\")
    parts = re.split(r"[/\\]", text)
    ids = [f"{m.group(1)}/{m.group(2)}" for m in map(_HF_CACHE_FOLDER.match, parts) if m]
    if text and text.count("/") <= 1 and "\\" not in text and not text.startswith((".", "~", os.sep)):
        ids.append(expand_model_name(text))
    return ids


def find_family(model_id_or_path: str | os.PathLike[str]) -> ModelFamily | None:
    """Find the family of a model from its Hub id, bare name, or local folder.

    A Hugging Face cache path (``.../models--BAAI--bge-small-en-v1.5/snapshots/<rev>``) is matched by the id
    it encodes; another local folder by its own name (``/data/bge-small-en-v1.5``).

    Args:
        model_id_or_path: ``"BAAI/bge-small-en-v1.5"``, ``"all-MiniLM-L6-v2"`` or a folder path.

    Returns:
        The first matching :class:`ModelFamily`, or None when the model is not one sentencekit knows.

    """
    text = os.fspath(model_id_or_path)
    for hub_id in _hub_ids_in(text):
        for family in FAMILIES:
            if family.matches(hub_id):
                return family
    folder_name = re.split(r"[/\\]", text.rstrip("/\\"))[-1]
    if folder_name:
        for family in FAMILIES:
            if family.matches_folder_name(folder_name):
                return family
    return None
