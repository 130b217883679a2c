"""The short-name rule: which Hub id a bare model name such as ``"all-MiniLM-L6-v2"`` stands for.

A bare name gets :data:`DEFAULT_ORGANIZATION` in front, exactly as in sentence-transformers, except for the
original transformers checkpoints in :data:`UNPREFIXED_MODEL_NAMES` (``"bert-base-uncased"``, ...), which the
Hub serves under their bare names. Nothing here reads the environment or touches the file system.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_ORGANIZATION",
    "UNPREFIXED_MODEL_NAMES",
    "expand_model_name",
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
