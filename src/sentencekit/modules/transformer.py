"""The Transformer module: a Hugging Face encoder plus its tokenizer, producing token embeddings."""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any, ClassVar

import torch

from sentencekit.encoding.batching import IdRows, pad_token_ids
from sentencekit.encoding.tokens import TokenizedTexts, tokenize_in_chunks
from sentencekit.errors import ModelFormatError
from sentencekit.modules.base import Features, read_json, write_json
from sentencekit.modules.input_module import DEFAULT_BATCH_SIZE, InputModule

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "HALF_CPU_BATCH_SIZE",
    "HALF_CPU_BATCH_TOKENS",
    "TokenizedTexts",
    "Transformer",
]

logger = logging.getLogger(__name__)

# Config file names the reference has used for this module over the years, newest first.
_CONFIG_FILES = (
    "sentence_bert_config.json",
    "sentence_roberta_config.json",
    "sentence_distilbert_config.json",
    "sentence_camembert_config.json",
    "sentence_albert_config.json",
    "sentence_xlm-roberta_config.json",
    "sentence_xlnet_config.json",
)
# Keys of the v6 layout that describe what we already assume (a text encoder's last hidden state).
_V6_DESCRIPTIVE_KEYS = ("modality_config", "module_output_name", "backend", "architecture")
# Architectures whose encoder must be loaded alone (AutoModel would build the whole seq2seq model).
_ENCODER_ONLY_CLASSES = {"t5": "T5EncoderModel", "mt5": "MT5EncoderModel", "umt5": "UMT5EncoderModel"}
# Encoder dtypes whose output is widened to fp32 before pooling.
_HALF_DTYPES = (torch.float16, torch.bfloat16)
# The batch plan of a half-precision encoder on the CPU when ``encode`` gets no batch size or token budget:
# batches of up to 256 texts within 2,048 padded tokens, one per physical core side by side, each on one torch
# thread. Half-precision matrix products there (AMX, avx512_bf16) want many rows at once, and the small
# operators between them (GELU, layer norm, softmax) cost less on one thread than split over several. On a
# 2-core Xeon with AMX, all-MiniLM-L6-v2 in bf16 (same process, alternating runs, tokens/s, STSb sentences /
# SciFact abstracts): batches of 32 texts ~20,000 / ~27,500; 256 texts within 4,096 tokens, one at a time,
# ~25,000 / ~27,000; this plan ~29,000-32,000 / ~31,000-35,000. torch fp32 gains 0-3% from larger batches and
# 5-15% from side-by-side batches, so the fp32 plan stays at the reference's 32 texts.
HALF_CPU_BATCH_SIZE = 256
HALF_CPU_BATCH_TOKENS = 2048


class Transformer(InputModule):
    """Wraps ``AutoModel`` and ``AutoTokenizer``: texts -> token ids -> ``token_embeddings``.

    Args:
        model_name_or_path: A local folder (or a Hub id that transformers can resolve) holding the model.
        max_seq_length: Texts longer than this many tokens are truncated. ``None`` takes the smaller of the
            tokenizer's ``model_max_length`` and the model's ``max_position_embeddings``.
        model_kwargs: Passed to ``AutoModel.from_pretrained`` (e.g. ``{"torch_dtype": torch.bfloat16}``).
        tokenizer_kwargs: Passed to ``AutoTokenizer.from_pretrained``.
        config_kwargs: Passed to ``AutoConfig.from_pretrained``.
        cache_dir: Hugging Face cache folder used when ``model_name_or_path`` is a Hub id.
        do_lower_case: Lower-case texts before tokenizing (for models trained on lower-cased text).
        tokenizer_name_or_path: Load the tokenizer from elsewhere than the model.
        trust_remote_code: Allow model code from the model folder (only for models you trust).
    """

    config_file: ClassVar[str] = "sentence_bert_config.json"
    reference_type: ClassVar[str] = "sentence_transformers.models.Transformer"
    # The reference's ``transformer_task`` this class runs, and the transformers class that loads it.
    transformer_task: ClassVar[str] = "feature-extraction"
    auto_class: ClassVar[str] = "AutoModel"

    def __init__(
        self,
        model_name_or_path: str | Path,
        max_seq_length: int | None = None,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        cache_dir: str | None = None,
        do_lower_case: bool = False,
        tokenizer_name_or_path: str | Path | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        super().__init__()
        import transformers

        common: dict[str, Any] = {"cache_dir": cache_dir, "trust_remote_code": trust_remote_code}
        source = str(model_name_or_path)
        self.config = transformers.AutoConfig.from_pretrained(source, **common, **(config_kwargs or {}))
        class_name = self.auto_class
        if class_name == "AutoModel":
            class_name = _ENCODER_ONLY_CLASSES.get(self.config.model_type, class_name)
        model_class = getattr(transformers, class_name)
        self.auto_model = model_class.from_pretrained(
            source, config=self.config, **common, **(model_kwargs or {})
        )
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(
            str(tokenizer_name_or_path or source), **common, **(tokenizer_kwargs or {})
        )
        self.do_lower_case = do_lower_case
        self.max_seq_length = max_seq_length if max_seq_length is not None else self._default_max_length()
        # Set by the model builder when a later module (WeightedLayerPooling) needs every layer's output.
        self.output_hidden_states = bool(getattr(self.config, "output_hidden_states", False))
        accepted = set(inspect.signature(self.auto_model.forward).parameters)
        self._forward_inputs = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in accepted]

    def _default_max_length(self) -> int:
        limits = [self.tokenizer.model_max_length]
        positions = getattr(self.config, "max_position_embeddings", None)
        if isinstance(positions, int) and positions > 0:
            limits.append(positions)
        return int(min(limits))

    @property
    def max_seq_length(self) -> int:
        """Longest input in tokens; longer texts are truncated."""
        return self._max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        if int(value) <= 0:
            raise ValueError(f"max_seq_length must be a positive number of tokens, got {value}.")
        self._max_seq_length = int(value)
        self.tokenizer.model_max_length = int(value)

    @property
    def forward_inputs(self) -> list[str]:
        """The tensors the encoder takes, among ``input_ids``, ``attention_mask`` and ``token_type_ids``."""
        return list(self._forward_inputs)

    @property
    def parallel_batches(self) -> int:
        """Batches the encode loop may run at once.

        One per physical core, each on one torch thread, for a half-precision encoder on the CPU; else 1
        (torch spreads each batch over its own threads).
        """
        if self._half_on_cpu():
            from sentencekit.backends.cpu import physical_cores

            return physical_cores()
        return 1

    @property
    def default_batch_size(self) -> int:
        """Texts per batch when ``encode`` gets ``batch_size=None``.

        :data:`HALF_CPU_BATCH_SIZE` for a half-precision encoder on the CPU, else :data:`DEFAULT_BATCH_SIZE`.
        """
        return HALF_CPU_BATCH_SIZE if self._half_on_cpu() else DEFAULT_BATCH_SIZE

    @property
    def default_batch_tokens(self) -> int | None:
        """Token budget per batch when ``encode`` gets no ``max_batch_tokens`` (``None``: count only).

        :data:`HALF_CPU_BATCH_TOKENS` for a half-precision encoder on the CPU, else ``None``.
        """
        return HALF_CPU_BATCH_TOKENS if self._half_on_cpu() else None

    def _half_on_cpu(self) -> bool:
        first = next(self.auto_model.parameters(), None)
        return first is not None and first.dtype in _HALF_DTYPES and first.device.type == "cpu"

    def get_word_embedding_dimension(self) -> int:
        """Width of the token embeddings this module outputs."""
        return int(self.config.hidden_size)

    def get_config(self) -> dict[str, Any]:
        """Legacy ``sentence_bert_config.json`` content: readable by every reference version."""
        return {"max_seq_length": self.max_seq_length, "do_lower_case": self.do_lower_case}

    # --- tokenization -------------------------------------------------------------------------------------

    def tokenize_unpadded(self, texts: list[str]) -> TokenizedTexts:
        """Tokenize ``texts`` (truncating at ``max_seq_length``) without padding, counting truncations."""
        with_types = "token_type_ids" in self._forward_inputs

        def call(start: int, stop: int) -> Any:
            chunk = texts[start:stop]
            return self.tokenizer(
                [t.lower() for t in chunk] if self.do_lower_case else chunk,
                truncation=True,
                max_length=self.max_seq_length,
                return_attention_mask=False,
                return_token_type_ids=with_types,
            )

        return tokenize_in_chunks(call, len(texts), with_types)

    def collate(self, input_ids: IdRows, token_type_ids: IdRows | None = None) -> Features:
        """Pad a batch of token id lists into tensors, on the tokenizer's padding side."""
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        left = self.tokenizer.padding_side == "left"
        features: Features = pad_token_ids(input_ids, token_type_ids, pad_id, left)
        return features

    def prompt_length(self, prompt: str) -> int:
        """Number of leading tokens a prompt occupies once prepended (its trailing special token excluded)."""
        ids = self.tokenize_unpadded([prompt]).input_ids[0].tolist()
        if ids and ids[-1] in set(self.tokenizer.all_special_ids):
            return len(ids) - 1
        return len(ids)

    # --- forward / save / load ----------------------------------------------------------------------------

    def forward(self, features: Features) -> Features:
        """Run the encoder; adds ``token_embeddings`` (and ``all_layer_embeddings`` when asked for)."""
        inputs = {name: features[name] for name in self._forward_inputs if name in features}
        out = self.auto_model(**inputs, output_hidden_states=self.output_hidden_states, return_dict=True)
        # A half-precision encoder (model_kwargs={"torch_dtype": torch.bfloat16}) hands on fp32 token
        # embeddings, so that pooling, normalization and the returned embeddings are fp32.
        hidden = out.last_hidden_state
        features["token_embeddings"] = hidden.float() if hidden.dtype in _HALF_DTYPES else hidden
        if self.output_hidden_states:
            features["all_layer_embeddings"] = out.hidden_states
        return features

    def save(self, path: str | Path) -> None:
        """Save the encoder, tokenizer and ``sentence_bert_config.json`` into ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.auto_model.save_pretrained(str(path))
        self.tokenizer.save_pretrained(str(path))
        write_json(path / self.config_file, self.get_config())

    @classmethod
    def load(
        cls,
        path: str | Path,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        trust_remote_code: bool = False,
        cache_dir: str | None = None,
    ) -> Transformer:
        """Load from a model folder in either the legacy (v2-v5) or the v6 layout."""
        path = Path(path)
        config: dict[str, Any] = {}
        for name in _CONFIG_FILES:
            if (path / name).is_file():
                config = read_json(path / name)
                break
        task = config.pop("transformer_task", cls.transformer_task)
        if task != cls.transformer_task:
            if cls is Transformer and task == "fill-mask":  # a SPLADE model's masked-language-model encoder
                from sentencekit.modules.mlm_transformer import MLMTransformer

                return MLMTransformer.load(
                    path, model_kwargs, tokenizer_kwargs, config_kwargs, trust_remote_code, cache_dir
                )
            raise ModelFormatError(
                f"{path} holds a '{task}' transformer; {cls.__name__} needs '{cls.transformer_task}'. "
                "Load sequence-classification models with CrossEncoder instead."
            )
        for key in _V6_DESCRIPTIVE_KEYS:
            config.pop(key, None)
        # The reference stored pass-through arguments under several names over time; merge them.
        kwargs: dict[str, dict[str, Any]] = {
            "model_kwargs": {**config.pop("model_args", {}), **config.pop("model_kwargs", {})},
            "tokenizer_kwargs": {**config.pop("tokenizer_args", {}), **config.pop("tokenizer_kwargs", {})},
            "config_kwargs": {**config.pop("config_args", {}), **config.pop("config_kwargs", {})},
        }
        kwargs["tokenizer_kwargs"].update(config.pop("processor_kwargs", {}))
        max_seq_length = config.pop("max_seq_length", None)
        do_lower_case = bool(config.pop("do_lower_case", False))
        if config:
            logger.warning("Ignoring unknown keys in %s's transformer config: %s", path, sorted(config))
        return cls(
            path,
            max_seq_length=max_seq_length,
            model_kwargs={**kwargs["model_kwargs"], **(model_kwargs or {})},
            tokenizer_kwargs={**kwargs["tokenizer_kwargs"], **(tokenizer_kwargs or {})},
            config_kwargs={**kwargs["config_kwargs"], **(config_kwargs or {})},
            cache_dir=cache_dir,
            do_lower_case=do_lower_case,
            trust_remote_code=trust_remote_code,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({{'max_seq_length': {self.max_seq_length}, "
            f"'do_lower_case': {self.do_lower_case}, "
            f"'architecture': '{type(self.auto_model).__name__}'}})"
        )
