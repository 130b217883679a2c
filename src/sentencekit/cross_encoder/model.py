"""CrossEncoder: scores text pairs jointly; a drop-in replacement for the reference's ``CrossEncoder``."""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sentencekit.cross_encoder.activation import activation_path, apply_activation, describe_scores
from sentencekit.cross_encoder.first_token import first_token_view, views_agree
from sentencekit.cross_encoder.folder import model_source, read_settings
from sentencekit.cross_encoder.inputs import as_pair_list
from sentencekit.cross_encoder.loading import (
    accepts_token_types,
    attach_backend,
    load_transformer,
    resolve_folder,
    settings_in_use,
)
from sentencekit.cross_encoder.ranking import rank_documents
from sentencekit.cross_encoder.saving import save_model
from sentencekit.cross_encoder.scoring import ScorePlan, score_pairs
from sentencekit.encoding.gpu import default_device
from sentencekit.hub_upload import push_to_hub
from sentencekit.model_card import CrossEncoderModelCardData, checked_card_data
from sentencekit.model_methods import SharedMethods
from sentencekit.training.fit import fit_cross_encoder

__all__ = ["CrossEncoder"]

logger = logging.getLogger(__name__)


class CrossEncoder(SharedMethods, nn.Module):
    """Scores a pair of texts with one transformer pass over both; for reranking, NLI and pair classification.

    A cross-encoder reads query and document together, so it is more accurate than comparing embeddings but
    cannot index anything ahead of time: use it on the few candidates a bi-encoder retrieved
    (:func:`sentencekit.cross_encoder.retrieve_and_rerank`).

    Args:
        model_name_or_path: A local folder, a Hub id, or a bare name (``"ms-marco-MiniLM-L6-v2"`` means
            ``"cross-encoder/ms-marco-MiniLM-L6-v2"``). Any Hugging Face sequence-classification model
            loads; a base model gets a new, untrained head.
        num_labels: Outputs of the head; ``None`` keeps the saved number. 1 means one relevance score.
        max_length: Most tokens per pair; longer pairs lose tokens from their longer text. ``None`` takes
            the tokenizer's limit, capped at the model's position embeddings.
        activation_fn: Applied to the logits by :meth:`predict`. ``None`` uses the one the folder records,
            else a sigmoid for one label (probabilities) and the identity for several (logits).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ... (default: the best available).
        cache_folder: Where Hub downloads are kept.
        trust_remote_code: Allow custom model code, and activations outside ``torch``, from the folder.
        revision: Hub branch, tag or commit.
        local_files_only: Never download; use local folders and caches only.
        token: Hugging Face token for private models.
        model_kwargs: Passed to ``AutoModelForSequenceClassification.from_pretrained``.
        tokenizer_kwargs: Passed to ``AutoTokenizer.from_pretrained``.
        config_kwargs: Passed to ``AutoConfig.from_pretrained`` (e.g. ``{"classifier_dropout": 0.1}``).
        processor_kwargs: The reference v6 name of ``tokenizer_kwargs``; pass one or the other.
        prompts: Named prompts, prepended to the first text of each pair, added to the folder's.
        default_prompt_name: Prompt used when :meth:`predict` gets none.
        backend: ``None`` (default): the fastest exact path, ONNX Runtime with the fused fp32 graph on CPU
            when the ``onnx`` extra is installed, else torch; ``"torch"``; ``"onnx"`` (``model_kwargs`` then
            takes ``file_name``, e.g. ``"onnx/model_qint8_avx512_vnni.onnx"``, ``provider``,
            ``num_threads``); ``"openvino"`` (``file_name``: default the folder's
            ``openvino/openvino_model.xml``, else the ONNX export; ``ov_config``; f32 unless it says
            otherwise); ``"auto"``: the first that passes a check of its logits, of OpenVINO bf16 (CPUs with
            AMX, the ``openvino`` extra) and torch bf16 (CPUs with native bf16), else the default
            (:mod:`sentencekit.backends.fast_scorer`). ``inference_path`` says what runs.
        model_card_data: Language, license, title, dataset ids and tags for the ``README.md`` that ``save``
            writes (:class:`~sentencekit.model_card.CrossEncoderModelCardData`).

    Example:
        >>> model = CrossEncoder("cross-encoder/ms-marco-MiniLM-L6-v2")  # doctest: +SKIP
        >>> model.predict([("How many people live in Berlin?", "Berlin has 3.5 million people.")])
        array([0.99], dtype=float32)
        >>> model.rank("How many people live in Berlin?", ["Berlin is green.", "Berlin has 3.5M people."])
        [{'corpus_id': 1, 'score': 0.99}, {'corpus_id': 0, 'score': 0.01}]
    """

    def __init__(
        self,
        model_name_or_path: str | Path,
        num_labels: int | None = None,
        max_length: int | None = None,
        activation_fn: Callable[[Tensor], Tensor] | None = None,
        device: str | None = None,
        *,
        cache_folder: str | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
        local_files_only: bool = False,
        token: bool | str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        backend: str | None = None,
        model_card_data: CrossEncoderModelCardData | None = None,
    ) -> None:
        super().__init__()
        from sentencekit.backends.select import plan_backend

        self.model_card_data = checked_card_data(model_card_data, CrossEncoderModelCardData)

        backend_plan = plan_backend(backend, model_kwargs)
        model_kwargs = backend_plan.torch_model_kwargs
        if tokenizer_kwargs is not None and processor_kwargs is not None:
            raise ValueError("Pass tokenizer_kwargs or processor_kwargs (its reference v6 name), not both.")
        if num_labels is not None and num_labels < 1:
            raise ValueError(f"num_labels must be a positive integer, got {num_labels}.")
        folder = resolve_folder(model_name_or_path, cache_folder, revision, token, local_files_only)
        self.config, self.model, self.tokenizer = load_transformer(
            model_source(folder),
            trust_remote_code=trust_remote_code,
            cache_folder=cache_folder,
            num_labels=num_labels,
            max_length=max_length,
            model_kwargs=model_kwargs,
            tokenizer_kwargs=tokenizer_kwargs or processor_kwargs,
            config_kwargs=config_kwargs,
        )
        self.max_length = int(self.tokenizer.model_max_length)

        self.prompts, self.default_prompt_name, self.activation_fn = settings_in_use(
            read_settings(folder, self.config),
            prompts=prompts,
            default_prompt_name=default_prompt_name,
            activation_fn=activation_fn,
            num_labels=self.num_labels,
            trust_remote_code=trust_remote_code,
        )
        self.model_id = str(model_name_or_path)
        self._with_token_types = accepts_token_types(self.model, self.tokenizer)
        self._first_token_ok: bool | None = None  # checked on first use (see first_token.py)
        self.to(device or default_device())
        self.eval()
        # which backend and path run, e.g. ("onnx", "onnx fp32"); the scorer is None on the torch path
        self.backend, self.inference_path, self._onnx_scorer = attach_backend(
            backend_plan,
            self.model,
            self.tokenizer,
            self.max_length,
            folder,
            self._with_token_types,
            str(self.device),
        )
        logger.info("Loaded cross-encoder %s: predict() returns %s.", self.model_id, self.score_description)

    # --- properties ---------------------------------------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "activation_fn":  # an attribute, not a submodule: it is not part of the weights
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    @property
    def device(self) -> torch.device:
        """Device of the model's parameters."""
        for p in self.parameters():
            return p.device
        return torch.device("cpu")

    @property
    def num_labels(self) -> int:
        """Number of scores per pair."""
        return int(self.config.num_labels)

    @property
    def max_length(self) -> int:
        """Most tokens per pair; settable."""
        return self._max_length

    @max_length.setter
    def max_length(self, value: int) -> None:
        if int(value) <= 0:
            raise ValueError(f"max_length must be a positive number of tokens, got {value}.")
        self._max_length = int(value)
        self.tokenizer.model_max_length = int(value)

    @property
    def max_seq_length(self) -> int:
        """Same as :attr:`max_length` (the reference v6 name)."""
        return self.max_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        self.max_length = value

    @property
    def score_description(self) -> str:
        """What :meth:`predict` returns by default, in words: probabilities or raw logits."""
        return describe_scores(self.activation_fn, self.num_labels)

    def forward(self, **features: Tensor) -> Tensor:
        """Logits of a tokenized batch, shape ``(batch, num_labels)``."""
        logits: Tensor = self.model(**features).logits
        return logits

    # --- scoring ------------------------------------------------------------------------------------------

    def predict(
        self,
        sentences: Any = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        activation_fn: Callable[[Tensor], Tensor] | None = None,
        apply_softmax: bool | None = False,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        prompt_name: str | None = None,
        prompt: str | None = None,
        max_batch_tokens: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """Score one pair (-> a scalar or a 1-D array) or a list of pairs (-> 1-D or 2-D).

        Args:
            sentences: One ``(first, second)`` pair of strings or a list of them (``inputs=`` works too).
            batch_size: Most pairs in one forward pass.
            show_progress_bar: Show a tqdm bar (default: only when stderr is a terminal).
            activation_fn: Applied to the logits for this call; ``None`` uses :attr:`activation_fn`. Pass
                ``torch.nn.Identity()`` for raw logits.
            apply_softmax: With several labels, turn each row into probabilities (after ``activation_fn``).
            convert_to_numpy: Return a numpy array (the default); else a list of tensors.
            convert_to_tensor: Return one tensor on the model's device (wins over ``convert_to_numpy``).
            prompt_name: Key into :attr:`prompts` whose text is prepended to the first text of each pair.
            prompt: Literal text to prepend instead.
            max_batch_tokens: Also cut batches so that rows x longest row stays within this many tokens.
            **kwargs: Only ``inputs=`` (the reference v6 name of ``sentences``); anything else is an error.

        Returns:
            Shape ``(n,)`` for one label, ``(n, num_labels)`` for several; one pair gives one row.

        Raises:
            InvalidInputError: For ``None``, a pair without exactly two strings, or a non-string text; the
                message names the index and the type.
        """
        if "inputs" in kwargs and sentences is None:
            sentences = kwargs.pop("inputs")
        if kwargs:
            valid = sorted(p for p in inspect.signature(self.predict).parameters if p != "kwargs")
            raise ValueError(f"predict() got unknown keyword arguments {sorted(kwargs)}; valid: {valid}.")
        pairs, single = as_pair_list(sentences)
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        prompt = self._resolve_prompt(prompt, prompt_name)
        if prompt:
            pairs = [(prompt + first, second) for first, second in pairs]
        if not pairs:
            empty = torch.empty((0,) if self.num_labels == 1 else (0, self.num_labels))
            return empty if convert_to_tensor else (empty.numpy() if convert_to_numpy else [])
        self.eval()
        plan = ScorePlan(
            batch_size=batch_size,
            device=self.device,
            max_length=self.max_length,
            max_batch_tokens=max_batch_tokens,
            show_progress_bar=bool(sys.stderr.isatty() if show_progress_bar is None else show_progress_bar),
        )
        logits = score_pairs(self._scoring_model(), self.tokenizer, pairs, plan, self._with_token_types)
        scores = self._activate(logits, activation_fn, bool(apply_softmax))
        if convert_to_tensor:
            out: Any = scores
        elif convert_to_numpy:
            out = scores.cpu().numpy()
        else:
            out = list(scores)
        return out[0] if single else out

    def _activate(
        self, logits: Tensor, activation_fn: Callable[[Tensor], Tensor] | None, softmax: bool
    ) -> Tensor:
        fn = activation_fn if activation_fn is not None else self.activation_fn
        return apply_activation(logits, fn, self.num_labels, softmax)

    def _scoring_model(self) -> Any:
        """The ONNX scorer when it may run, else the model (or its first-token view when that agrees)."""
        if self._onnx_scorer is not None and self._onnx_scorer.ready():
            return self._onnx_scorer
        view = first_token_view(self.model)
        if view is None:
            return self.model
        if self._first_token_ok is None:
            self._first_token_ok = views_agree(self.model, view, self.device)
        return view if self._first_token_ok else self.model

    def rank(
        self,
        query: str,
        documents: Any,
        top_k: int | None = None,
        return_documents: bool = False,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        activation_fn: Callable[[Tensor], Tensor] | None = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
    ) -> list[dict[str, Any]]:
        """Score ``documents`` against ``query`` and return them best first.

        Args:
            query: The query text.
            documents: The texts to rank; an empty list gives ``[]``.
            top_k: Keep this many results (``None``: all).
            return_documents: Add each document's text under ``"text"``.
            batch_size: Most pairs in one forward pass.
            show_progress_bar: Show a tqdm bar.
            activation_fn: Applied to the logits for this call (see :meth:`predict`).
            prompt_name: Key into :attr:`prompts` prepended to the query.
            prompt: Literal text prepended to the query.

        Returns:
            ``[{"corpus_id": int, "score": float[, "text": str]}]``, highest score first; equal scores keep
            the input order.

        Raises:
            ValueError: If the model has more than one label (use :meth:`predict`).
            InvalidInputError: For a non-string query or document, or a negative ``top_k``.
        """
        return rank_documents(
            self,
            query,
            documents,
            top_k=top_k,
            return_documents=return_documents,
            batch_size=batch_size,
            show_progress_bar=show_progress_bar,
            activation_fn=activation_fn,
            prompt_name=prompt_name,
            prompt=prompt,
        )

    def _resolve_prompt(self, prompt: str | None, prompt_name: str | None) -> str | None:
        if prompt is not None:
            return prompt
        name = prompt_name if prompt_name is not None else self.default_prompt_name
        if name is None:
            return None
        if name not in self.prompts:
            raise ValueError(f"Prompt {name!r} is not among the model's prompts {sorted(self.prompts)}.")
        return self.prompts[name]

    # --- saving -------------------------------------------------------------------------------------------

    def save(self, path: str | Path, safe_serialization: bool = True) -> None:
        """Write the model so that sentencekit and sentence-transformers (v4 to v6) load the same scorer.

        The activation is recorded by its class path; an activation that is not a ``torch.nn.Module``
        instance cannot be restored from a path, so loading falls back to the default and a warning says so.
        """
        save_model(self, path, safe_serialization=safe_serialization)

    def save_pretrained(self, path: str | Path, safe_serialization: bool = True) -> None:
        """Alias of :meth:`save`."""
        self.save(path, safe_serialization=safe_serialization)

    fit = fit_cross_encoder  # the reference's classic training API, see sentencekit.training.fit
    push_to_hub = push_to_hub  # upload to a Hugging Face Hub repository, see sentencekit.hub_upload

    def __repr__(self) -> str:
        return (
            f"CrossEncoder(model={self.model_id!r}, architecture={type(self.model).__name__}, "
            f"num_labels={self.num_labels}, max_length={self.max_length}, "
            f"activation_fn={activation_path(self.activation_fn) if self.activation_fn else None}: "
            f"{self.score_description})"
        )
