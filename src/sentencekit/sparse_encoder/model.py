"""SparseEncoder: texts -> sparse, vocabulary-sized vectors (SPLADE), with the reference's API."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sentencekit.encoding import pool as process_pool
from sentencekit.encoding.inputs import as_text_list
from sentencekit.encoding.loop import EncodePlan, check_max_active_dims, run_encode
from sentencekit.encoding.sparse_rows import unbind_rows
from sentencekit.loading import ModelSettings
from sentencekit.model_card import SparseEncoderModelCardData, checked_card_data
from sentencekit.modules import MLMTransformer, Module, SpladePooling
from sentencekit.sentence_transformer import SentenceTransformer

__all__ = ["SparseEncoder"]

logger = logging.getLogger(__name__)


def _default_sparse_modules(folder: Path, **transformer_args: Any) -> list[Module]:
    """A plain Hugging Face folder as a sparse encoder, as the reference builds one.

    A masked-language model (``*ForMaskedLM``) becomes SPLADE: ``MLMTransformer``, ``SpladePooling("max")``.
    Any other encoder becomes CSR: ``Transformer``, mean ``Pooling`` and an untrained ``SparseAutoEncoder``
    (4x the width, k=256), to be trained with ``CSRLoss``.
    """
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(
        str(folder), trust_remote_code=transformer_args.get("trust_remote_code", False)
    )
    if any(name.endswith("ForMaskedLM") for name in getattr(config, "architectures", None) or []):
        logger.info("%s is a masked-language model: using MLMTransformer + SpladePooling('max').", folder)
        return [MLMTransformer.load(folder, **transformer_args), SpladePooling("max")]
    from sentencekit.modules import Pooling, SparseAutoEncoder, Transformer

    logger.warning(
        "%s is not a masked-language model: using Transformer + mean Pooling + an untrained "
        "SparseAutoEncoder (CSR); train it with CSRLoss before use.",
        folder,
    )
    transformer = Transformer.load(folder, **transformer_args)
    width = transformer.get_word_embedding_dimension()
    # the reference's sizes: 4x the width, 256 latents kept, 512 for the auxiliary loss
    autoencoder = SparseAutoEncoder(input_dim=width, hidden_dim=4 * width, k=256, k_aux=512)
    return [transformer, Pooling(width, "mean"), autoencoder]


class SparseEncoder(SentenceTransformer):
    """Maps texts to sparse vectors over the vocabulary; ``sentence_transformers.SparseEncoder``'s API.

    Each dimension is a vocabulary token and each non-zero weight says how much the text is about that token,
    so the vectors can go into an inverted index and be read with :meth:`decode`. Loads the reference's
    SparseEncoder folders (v5 and v6 layouts) and plain masked-language-model folders (which become
    ``MLMTransformer`` + ``SpladePooling("max")``).

    Args:
        model_name_or_path: A local folder or a Hugging Face Hub id.
        modules: Build the model from these modules (e.g. ``[MLMTransformer(path), SpladePooling()]``).
        device: ``"cpu"``, ``"cuda"``, ... (default: the best available).
        prompts: Named prompts, e.g. ``{"query": "query: "}``, added to those in the model's config.
        default_prompt_name: Prompt used when ``encode`` gets none.
        similarity_fn_name: ``"dot"`` (the default for sparse models), ``"cosine"``, ``"euclidean"`` or
            ``"manhattan"``.
        cache_folder: Where Hub downloads are kept.
        trust_remote_code: Allow custom model code from the model folder.
        revision: Hub branch, tag or commit.
        local_files_only: Never download.
        token: Hugging Face token for private models.
        max_active_dims: Keep at most this many non-zero dimensions per vector (the largest); ``None`` takes
            the model config's value, if any.
        model_kwargs: Passed to ``AutoModelForMaskedLM.from_pretrained``.
        tokenizer_kwargs: Passed to ``AutoTokenizer.from_pretrained`` (``processor_kwargs`` is accepted too).
        config_kwargs: Passed to ``AutoConfig.from_pretrained``.
        model_card_data: Card data for the ``README.md`` that ``save`` writes
            (:class:`~sentencekit.model_card.SparseEncoderModelCardData`).
        backend: ``"torch"``, the only one for sparse models so far.

    Example:
        >>> model = SparseEncoder("naver/splade-v3")  # doctest: +SKIP
        >>> emb = model.encode(["The weather is lovely today.", "It's so sunny outside!"])  # doctest: +SKIP
        >>> model.decode(emb[0], top_k=3)  # doctest: +SKIP
        [('weather', 2.3), ('lovely', 2.1), ('today', 1.7)]
    """

    def __init__(
        self,
        model_name_or_path: str | Path | None = None,
        *,
        modules: list[nn.Module] | None = None,
        device: str | None = None,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        similarity_fn_name: str | None = None,
        cache_folder: str | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
        local_files_only: bool = False,
        token: bool | str | None = None,
        max_active_dims: int | None = None,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        model_card_data: SparseEncoderModelCardData | None = None,
        backend: str = "torch",
        processor_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if backend != "torch":
            raise ValueError(
                f"SparseEncoder runs on the torch backend only so far, got backend={backend!r}; "
                "leave backend out (or pass backend='torch')."
            )
        check_max_active_dims(max_active_dims)
        card = checked_card_data(model_card_data, SparseEncoderModelCardData)
        super().__init__(
            model_name_or_path,
            modules=modules,
            device=device,
            prompts=prompts,
            default_prompt_name=default_prompt_name,
            similarity_fn_name=similarity_fn_name,
            cache_folder=cache_folder,
            trust_remote_code=trust_remote_code,
            revision=revision,
            local_files_only=local_files_only,
            token=token,
            model_kwargs=model_kwargs,
            tokenizer_kwargs=tokenizer_kwargs,
            config_kwargs=config_kwargs,
            backend="torch",
            model_card_data=card,
            processor_kwargs=processor_kwargs,
        )
        if self._similarity_fn_name is None:
            self._similarity_fn_name = "dot"
        self.max_active_dims = (
            max_active_dims if max_active_dims is not None else self.folder_settings.max_active_dims
        )
        if self.max_active_dims is None:  # a CSR model keeps its autoencoder's k codes, as in the reference
            from sentencekit.modules import SparseAutoEncoder

            autoencoder = next((m for m in self if isinstance(m, SparseAutoEncoder)), None)
            self.max_active_dims = autoencoder.k if autoencoder is not None else None

    _plain_folder_modules = staticmethod(_default_sparse_modules)

    def _settings(self) -> ModelSettings:
        base = super()._settings()
        return ModelSettings(
            prompts=base.prompts,
            default_prompt_name=base.default_prompt_name,
            similarity_fn_name=base.similarity_fn_name,
            model_type="SparseEncoder",
            max_active_dims=self.max_active_dims,
        )

    # --- encoding -----------------------------------------------------------------------------------------

    def encode(  # type: ignore[override]
        self,
        sentences: str | list[str] | None = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        convert_to_tensor: bool = True,
        convert_to_sparse_tensor: bool = True,
        save_to_cpu: bool = False,
        device: str | list[str] | None = None,
        max_active_dims: int | None = None,
        max_batch_tokens: int | None = None,
        task: str | None = None,
        pool: dict[str, Any] | None = None,
        chunk_size: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """Embed one text (-> a 1-D vector) or a list of texts (-> one 2-D tensor, or a list of vectors).

        Args:
            sentences: A string or a list of strings (``inputs=`` is accepted too).
            prompt_name: Key into :attr:`prompts` whose text is prepended.
            prompt: Literal text to prepend (wins over ``prompt_name``).
            batch_size: Most texts in one forward pass.
            show_progress_bar: Show a tqdm bar (default: only when stderr is a terminal).
            convert_to_tensor: One stacked tensor (the default), else a list of one vector per text.
            convert_to_sparse_tensor: Sparse COO tensors (the default), else dense ones.
            save_to_cpu: Return tensors on the CPU, whatever device computed them.
            device: Run on this device for this call; a list (``["cuda:0", "cuda:1"]``) encodes on a pool of
                processes started for this call and stopped after.
            max_active_dims: Keep at most this many non-zero dimensions per vector (default: the model's).
            max_batch_tokens: Also cut batches so rows x longest row stays within this many tokens.
            task: The route of a :class:`~sentencekit.modules.Router` (``"query"``, ``"document"`` ...;
                :meth:`encode_query` and :meth:`encode_document` set it). Ignored by models without one.
            pool: Encode on the processes of :meth:`start_multi_process_pool` (results on the CPU).
            chunk_size: Texts per job handed to a pool's worker (default: about ten jobs per worker).
            **kwargs: Only ``inputs=`` (the reference's v6 name for ``sentences``).

        Raises:
            InvalidInputError: For ``None`` or non-string elements.
            ValueError: For a bad argument value or an unknown keyword argument.
        """
        if "inputs" in kwargs and sentences is None:
            sentences = kwargs.pop("inputs")
        if kwargs:
            raise ValueError(
                f"encode() got unknown keyword arguments {sorted(kwargs)}; see help(SparseEncoder.encode)."
            )
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        max_active_dims = max_active_dims if max_active_dims is not None else self.max_active_dims
        check_max_active_dims(max_active_dims)
        texts, single = as_text_list(sentences)
        prompt = self._resolve_prompt(prompt, prompt_name)
        self._reader(task)  # checks that a Router has a route for the task, before any work
        pooled = pool is not None or isinstance(device, list)  # other processes encode: encoding/pool.py
        run_device = torch.device(device) if isinstance(device, (str, torch.device)) else self.device
        if run_device != self.device:
            self.to(run_device)
        self.eval()
        plan = EncodePlan(
            batch_size=batch_size,
            device=run_device,
            prompt=prompt,
            prompt_length=self._prompt_length(prompt, task),
            max_batch_tokens=max_batch_tokens,
            show_progress_bar=sys.stderr.isatty() if show_progress_bar is None else bool(show_progress_bar),
            to_cpu=save_to_cpu,
            max_active_dims=max_active_dims,
            sparse=convert_to_sparse_tensor,
            task=task,
        )
        if texts and pooled:
            devices = device if isinstance(device, list) else None
            result = process_pool.encode_pooled(self, texts, plan, pool, devices, chunk_size)
            assert isinstance(result, Tensor)
        elif texts:
            result = run_encode(list(self), texts, plan)
            assert isinstance(result, Tensor)
        else:
            dim = self.get_sentence_embedding_dimension() or 0
            result = torch.zeros((0, dim), device="cpu" if save_to_cpu else run_device)
            result = result.to_sparse() if convert_to_sparse_tensor else result
        if single:
            return result[0]
        return result if convert_to_tensor else unbind_rows(result)

    # --- sparse vectors -----------------------------------------------------------------------------------

    def get_sentence_embedding_dimension(self) -> int | None:
        """Width of the vectors ``encode`` returns: the vocabulary size for SPLADE models."""
        for module in reversed(list(self)):
            get_dim = getattr(module, "get_sentence_embedding_dimension", None)
            dim = get_dim() if get_dim is not None else None
            if dim is None and isinstance(module, MLMTransformer):
                dim = module.get_word_embedding_dimension()
            if dim is not None:
                return int(dim)
        return None

    get_embedding_dimension = get_sentence_embedding_dimension

    @property
    def splade_pooling_chunk_size(self) -> int | None:
        """Tokens :class:`SpladePooling` pools at a time (``None``: all; or no SpladePooling in the model)."""
        pooling = self._splade_pooling()
        return pooling.chunk_size if pooling is not None else None

    @splade_pooling_chunk_size.setter
    def splade_pooling_chunk_size(self, value: int | None) -> None:
        pooling = self._splade_pooling()
        if pooling is None:
            raise ValueError(
                "This model has no SpladePooling module, so it has no pooling chunk size to set."
            )
        if value is not None and value <= 0:
            raise ValueError(f"The chunk size must be a positive number of tokens or None, got {value}.")
        pooling.chunk_size = value

    def _splade_pooling(self) -> SpladePooling | None:
        return next((m for m in self if isinstance(m, SpladePooling)), None)

    @staticmethod
    def sparsity(embeddings: Tensor) -> dict[str, float]:
        """Mean non-zero dimensions per vector (``active_dims``) and mean share of zeros (``sparsity_ratio``).

        Args:
            embeddings: One vector (1-D) or a batch (2-D), sparse or dense.
        """
        if not isinstance(embeddings, Tensor):
            raise TypeError(f"sparsity() takes a torch.Tensor, got {type(embeddings).__name__}.")
        if embeddings.ndim not in (1, 2):
            raise ValueError(f"sparsity() takes a 1-D or 2-D tensor, got {embeddings.ndim}-D.")
        rows = embeddings.unsqueeze(0) if embeddings.ndim == 1 else embeddings
        count, width = rows.shape
        if count == 0 or width == 0:
            return {"active_dims": 0.0, "sparsity_ratio": 1.0}
        if rows.is_sparse:
            coalesced = rows.coalesce()
            nonzero = int((coalesced.values() != 0).sum())
        else:
            nonzero = int((rows != 0).sum())
        active = nonzero / count
        return {"active_dims": active, "sparsity_ratio": 1.0 - active / width}

    @staticmethod
    def intersection(embeddings_1: Tensor, embeddings_2: Tensor) -> Tensor:
        """The dimensions two sparse vectors share, weighted by the product of their weights.

        Args:
            embeddings_1: One vector (1-D).
            embeddings_2: One vector (1-D) or a batch (2-D), each row compared with ``embeddings_1``.

        Returns:
            A sparse tensor shaped like ``embeddings_2``, non-zero only where both are positive.
        """
        if embeddings_1.ndim != 1:
            raise ValueError(f"embeddings_1 must be one vector (1-D), got shape {tuple(embeddings_1.shape)}.")
        if embeddings_2.ndim not in (1, 2):
            raise ValueError(f"embeddings_2 must be 1-D or 2-D, got shape {tuple(embeddings_2.shape)}.")
        if embeddings_1.shape[-1] != embeddings_2.shape[-1]:
            raise ValueError(
                f"The vectors have different widths: {embeddings_1.shape[-1]} and {embeddings_2.shape[-1]}."
            )
        a = embeddings_1.to_dense() if embeddings_1.is_sparse else embeddings_1
        b = embeddings_2.to_dense() if embeddings_2.is_sparse else embeddings_2
        product = a * b
        return (product * (product > 0)).to_sparse()

    def decode(self, embeddings: Tensor, top_k: int | None = None) -> list[Any]:
        """The tokens behind a sparse vector: ``(token, weight)`` pairs, heaviest first.

        Args:
            embeddings: One vector (1-D; returns one list) or a batch (2-D; returns a list per row).
            top_k: Keep this many tokens per vector (default: every non-zero one).
        """
        if top_k is not None and top_k <= 0:
            raise ValueError(f"top_k must be a positive integer or None, got {top_k}.")
        if not isinstance(embeddings, Tensor):
            raise TypeError(f"decode() takes a torch.Tensor, got {type(embeddings).__name__}.")
        if embeddings.ndim not in (1, 2):
            raise ValueError(f"decode() takes a 1-D or 2-D tensor, got {embeddings.ndim}-D.")
        rows = embeddings.unsqueeze(0) if embeddings.ndim == 1 else embeddings
        rows = (rows if rows.is_sparse else rows.to_sparse()).coalesce().cpu()
        row_of, token_of = rows.indices()
        values = rows.values()
        decoded: list[list[tuple[str, float]]] = []
        for row in range(rows.shape[0]):
            keep = (row_of == row) & (values != 0)
            weights, order = torch.sort(values[keep], descending=True, stable=True)
            tokens = token_of[keep][order]
            if top_k is not None:
                weights, tokens = weights[:top_k], tokens[:top_k]
            names = self.tokenizer.convert_ids_to_tokens(tokens.tolist())
            decoded.append(list(zip(names, weights.tolist(), strict=True)))
        return decoded[0] if embeddings.ndim == 1 else decoded
