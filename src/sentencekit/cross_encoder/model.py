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

from sentencekit import __version__
from sentencekit.cross_encoder.activation import (
    activation_path,
    default_activation,
    describe_scores,
    resolve_activation,
)
from sentencekit.cross_encoder.first_token import first_token_view, views_agree
from sentencekit.cross_encoder.folder import FolderSettings, model_source, read_settings, write_settings
from sentencekit.cross_encoder.inputs import as_documents, as_pair_list
from sentencekit.cross_encoder.scoring import ScorePlan, score_pairs
from sentencekit.encoding.gpu import default_device
from sentencekit.errors import InvalidInputError
from sentencekit.hub_upload import push_to_hub
from sentencekit.model_card import CrossEncoderModelCardData, checked_card_data
from sentencekit.model_methods import SharedMethods
from sentencekit.registry import expand_model_name
from sentencekit.training.fit import fit_cross_encoder
from sentencekit.training.model_card import write_model_card

__all__ = ["CrossEncoder"]

logger = logging.getLogger(__name__)

# Bare names are cross-encoders of this organisation on the Hub, as in the reference.
_DEFAULT_ORGANIZATION = "cross-encoder"


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
        import transformers

        folder = _resolve(model_name_or_path, cache_folder, revision, token, local_files_only)
        source = model_source(folder)
        common: dict[str, Any] = {"trust_remote_code": trust_remote_code, "cache_dir": cache_folder}
        config_args = dict(config_kwargs or {})
        if num_labels is not None:
            config_args["num_labels"] = num_labels
        self.config = transformers.AutoConfig.from_pretrained(str(source), **common, **config_args)
        self.model = transformers.AutoModelForSequenceClassification.from_pretrained(
            str(source), config=self.config, **common, **(model_kwargs or {})
        )
        tokenizer_args = dict(tokenizer_kwargs or processor_kwargs or {})
        if max_length is not None:
            tokenizer_args["model_max_length"] = max_length
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(source), **common, **tokenizer_args)
        if "model_max_length" not in tokenizer_args:
            positions = getattr(self.config, "max_position_embeddings", None)
            if isinstance(positions, int) and positions > 0:
                self.tokenizer.model_max_length = min(self.tokenizer.model_max_length, positions)
        self.max_length = int(self.tokenizer.model_max_length)

        settings = read_settings(folder, self.config)
        self.prompts: dict[str, str] = {**settings.prompts, **(prompts or {})}
        self.default_prompt_name = default_prompt_name or settings.default_prompt_name
        if self.default_prompt_name is not None and self.default_prompt_name not in self.prompts:
            raise ValueError(
                f"default_prompt_name {self.default_prompt_name!r} is not among the prompts "
                f"{sorted(self.prompts)}."
            )
        if activation_fn is None and settings.activation_fn:
            activation_fn = resolve_activation(settings.activation_fn, trust_remote_code=trust_remote_code)
        self.activation_fn = (
            activation_fn if activation_fn is not None else default_activation(self.num_labels)
        )
        self.model_id = str(model_name_or_path)
        forward_inputs = set(inspect.signature(self.model.forward).parameters)
        self._with_token_types = "token_type_ids" in forward_inputs and "token_type_ids" in getattr(
            self.tokenizer, "model_input_names", ["token_type_ids"]
        )
        self._first_token_ok: bool | None = None  # checked on first use (see first_token.py)
        self.to(device or default_device())
        self.eval()
        from sentencekit.backends.onnx_scorer import attach_scorer

        inputs = ["input_ids", "attention_mask"] + (["token_type_ids"] if self._with_token_types else [])
        # which backend and path run, e.g. ("onnx", "onnx fp32"); the scorer is None on the torch path
        self.backend, self.inference_path, self._onnx_scorer = attach_scorer(
            backend_plan, self.model, inputs, folder, str(self.device)
        )
        if backend_plan.backend == "auto" and self.backend == "onnx":  # on the CPU, the exact graph in place
            from sentencekit.backends.fast_scorer import choose_fast_scorer

            fast = choose_fast_scorer(self.model, self.tokenizer, self.max_length, folder, inputs)
            if fast is not None:
                self.backend, self.inference_path, self._onnx_scorer = fast
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
        with torch.inference_mode():
            if logits.is_floating_point() and torch.finfo(logits.dtype).bits < 32:
                logits = logits.float()
            fn = activation_fn if activation_fn is not None else self.activation_fn
            scores = fn(logits) if fn is not None else logits
            if self.num_labels == 1 and scores.ndim > 1:
                scores = scores.squeeze(-1)
            if softmax and scores.ndim > 1:
                scores = torch.softmax(scores, dim=1)
            return scores.clone()  # a normal tensor, usable outside inference mode

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
        if self.num_labels != 1:
            raise ValueError(
                f"rank() needs a model with one label; this one has {self.num_labels}. Use predict() on "
                "(query, document) pairs and pick the label you need."
            )
        docs = as_documents(query, documents)
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
            raise InvalidInputError(f"top_k must be None or a non-negative integer, got {top_k!r}.")
        if not docs:
            return []
        scores = self.predict(
            [(query, doc) for doc in docs],
            batch_size=batch_size,
            show_progress_bar=show_progress_bar,
            activation_fn=activation_fn,
            convert_to_tensor=True,
            prompt_name=prompt_name,
            prompt=prompt,
        ).tolist()
        order = sorted(range(len(docs)), key=lambda i: -scores[i])  # stable: ties keep the input order
        results: list[dict[str, Any]] = []
        for i in order[:top_k]:
            hit: dict[str, Any] = {"corpus_id": i, "score": scores[i]}
            if return_documents:
                hit["text"] = docs[i]
            results.append(hit)
        return results

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
        import transformers

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(str(folder), safe_serialization=safe_serialization)
        self.tokenizer.save_pretrained(str(folder))
        fn = self.activation_fn
        if fn is not None and not isinstance(fn, nn.Module):
            logger.warning(
                "The activation %r is not a torch.nn.Module; it is saved by name but will not be restored on "
                "load. Use a module such as torch.nn.Sigmoid().",
                fn,
            )
        settings = FolderSettings(
            activation_fn=activation_path(fn) if fn is not None else activation_path(nn.Identity()),
            prompts=dict(self.prompts),
            default_prompt_name=self.default_prompt_name,
        )
        versions = {
            "sentencekit": __version__,
            "transformers": transformers.__version__,
            "pytorch": torch.__version__,
        }
        write_settings(folder, settings, versions)
        write_model_card(self, folder)  # README.md, for a model trained here or with card data
        logger.info("Saved cross-encoder to %s (scores: %s)", folder, self.score_description)

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


def _resolve(
    name: str | Path,
    cache_folder: str | None,
    revision: str | None,
    token: bool | str | None,
    local_only: bool,
) -> Path:
    from sentencekit.hub import resolve_model_path

    text = str(name)
    if not Path(text).expanduser().exists() and "/" not in text and "\\" not in text and text.strip():
        text = expand_model_name(text, organization=_DEFAULT_ORGANIZATION)
    return resolve_model_path(
        text, revision=revision, token=token, cache_folder=cache_folder, local_files_only=local_only
    )
