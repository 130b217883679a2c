"""Shared fixtures: tiny random models built in memory, the real all-MiniLM-L6-v2, real benchmark data."""

from __future__ import annotations

import csv
import os
import string
from pathlib import Path
from typing import Any

import pytest

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Short everyday sentences, ending with an empty string: the base of the texts tests feed to models.
SHORT_TEXTS = (
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "hello world",
    "",
)

WORDS = [
    "the",
    "a",
    "an",
    "is",
    "are",
    "was",
    "of",
    "to",
    "and",
    "in",
    "on",
    "for",
    "with",
    "man",
    "woman",
    "child",
    "dog",
    "cat",
    "horse",
    "food",
    "pasta",
    "guitar",
    "plays",
    "playing",
    "eats",
    "eating",
    "rides",
    "riding",
    "walks",
    "running",
    "street",
    "car",
    "red",
    "blue",
    "green",
    "small",
    "large",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "search",
    "query",
    "passage",
    "document",
    "sentence",
    "embedding",
    "model",
    "test",
    "hello",
    "world",
]


def _write_tiny_bert(
    folder: Path, *, seed: int = 0, hidden: int = 32, layers: int = 2, masked_lm: bool = False
) -> Path:
    """A random-weight BERT with a real WordPiece tokenizer, saved as a plain Hugging Face folder.

    ``masked_lm=True`` saves a ``BertForMaskedLM`` (encoder plus vocabulary head), the base of SPLADE models.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertForMaskedLM, BertModel, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab_list = specials + chars + [f"##{c}" for c in chars] + WORDS
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(vocab_list))}
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tok.decoder = decoders.WordPiece()
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=64,
    )
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=2 * hidden,
        max_position_embeddings=64,
    )
    model = (BertForMaskedLM if masked_lm else BertModel)(config).eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    hf_tok.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's small matrix work on one torch thread (a busy 2-core machine only adds contention)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_hf_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain Hugging Face folder (config.json, weights, tokenizer) of a tiny random BERT."""
    return _write_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture(scope="session")
def tiny_mlm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain Hugging Face folder of a tiny random ``BertForMaskedLM``: what SPLADE models are built on."""
    return _write_tiny_bert(tmp_path_factory.mktemp("tiny_mlm"), seed=1, masked_lm=True)


@pytest.fixture(scope="session")
def sample_texts() -> list[str]:
    """Short and long texts, a duplicate, an empty string and a text longer than the tiny models' limit."""
    base = [
        *SHORT_TEXTS,
        "A man is eating food.",
        " ".join(["quick brown fox jumps over the lazy dog"] * 12),
    ]
    return base


@pytest.fixture(scope="module")
def texts(sample_texts: list[str]) -> list[str]:
    """``sample_texts`` and a few more: padded batches, a one-token-long text, a truncated one."""
    return [*sample_texts, "a", "dog", "the red car and the blue car"]


@pytest.fixture(scope="module")
def torch_embeddings(tiny_hf_folder: Path, texts: list[str], one_torch_thread: None) -> Any:
    """The tiny model's torch fp32 embeddings of ``texts`` (numpy): what the faster paths are held to."""
    from sentencekit import SentenceTransformer

    return SentenceTransformer(str(tiny_hf_folder), device="cpu", backend="torch").encode(texts, batch_size=4)


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """The real all-MiniLM-L6-v2 folder, from $SENTENCEKIT_TEST_MINILM or the packaged-model source."""
    env = os.environ.get("SENTENCEKIT_TEST_MINILM")
    if env:
        return Path(env)
    try:
        from sentencekit.hub import resolve_model_path

        return resolve_model_path("all-MiniLM-L6-v2")
    except Exception as exc:  # the model cannot be fetched here: skip, saying why
        pytest.skip(f"all-MiniLM-L6-v2 is not available ({type(exc).__name__}: {exc})")


def read_sts(split: str) -> list[tuple[str, str, float]]:
    """STSb rows (sentence1, sentence2, score) from ../shared/data, or skip when the data is absent."""
    path = DATA_DIR / "stsb" / f"stsb-en-{split}.csv"
    if not path.is_file():
        pytest.skip(f"{path} is missing (the shared benchmark data is not checked out beside the project)")
    with open(path, encoding="utf-8", newline="") as f:
        return [(r[0], r[1], float(r[2])) for r in csv.reader(f)]
