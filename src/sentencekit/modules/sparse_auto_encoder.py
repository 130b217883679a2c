"""SparseAutoEncoder: dense sentence embeddings -> sparse codes (CSR, contrastive sparse representation).

The module of "Beyond Matryoshka: Revisiting Sparse Coding for Adaptive Representation"
(https://huggingface.co/papers/2503.01776): a linear encoder maps a dense embedding to ``hidden_dim``
latents, of which only the ``k`` largest stay (then ReLU), so any dense model becomes a sparse one. The
decoder is the encoder's transposed weight; it only runs in training, where :class:`CSRLoss` compares the
reconstructions with the input.

Features a forward pass adds outside inference mode (the names the reference's ``CSRLoss`` reads):

======================================  =============================================================
``sentence_embedding``                  the top-``k`` codes (also the only output in inference mode)
``sentence_embedding_backbone``         the dense input embedding
``sentence_embedding_encoded``          all latents before top-k and ReLU
``sentence_embedding_encoded_4k``       the top-``4k`` codes
``auxiliary_embedding``                 the top-``k_aux`` codes among dead latents (``None``: k_aux=0)
``decoded_embedding_k``                 the reconstruction from the top-``k`` codes
``decoded_embedding_4k``                the reconstruction from the top-``4k`` codes
``decoded_embedding_aux``               the reconstruction from the auxiliary codes (``None``: k_aux=0)
``decoded_embedding_k_pre_bias``        ``decoded_embedding_k`` without the decoder bias
======================================  =============================================================
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import Tensor, nn

from sentencekit.errors import ModelFormatError
from sentencekit.modules.base import Features, Module

__all__ = ["SparseAutoEncoder"]

# The reference keeps its decoder as a module that wraps the encoder, so its files name the one shared
# weight either way; ours is always saved as the encoder's.
_WEIGHT_ALIASES = {"decoder.linear.weight": "encoder.weight"}


class SparseAutoEncoder(Module):
    """Top-k sparse autoencoder over a dense ``sentence_embedding`` (CSR).

    Args:
        input_dim: Width of the dense embeddings coming in.
        hidden_dim: Number of latents: the width of the sparse output vectors.
        k: Latents kept per vector (the output has at most ``k`` non-zeros; a ``k`` above ``hidden_dim`` keeps
            them all). ``encode(max_active_dims=...)`` overrides it per call.
        k_aux: Dead latents the auxiliary loss revives per vector in training (0: no auxiliary output).
        normalize: Standardize each input (zero mean, unit standard deviation) before encoding; the
            reconstructions are scaled back.
        dead_threshold: A latent is "dead" once it has not been among the top ``k`` for more than this many
            training steps.

    Example:
        >>> from sentencekit.models import Pooling, Transformer
        >>> from sentencekit.sparse_encoder import SparseEncoder
        >>> transformer = Transformer("sentence-transformers/all-MiniLM-L6-v2")  # doctest: +SKIP
        >>> csr = SparseAutoEncoder(input_dim=384, hidden_dim=4 * 384, k=64, k_aux=512)
        >>> model = SparseEncoder(modules=[transformer, Pooling(384, "mean"), csr])  # doctest: +SKIP
    """

    config_keys: ClassVar[tuple[str, ...]] = (
        "input_dim",
        "hidden_dim",
        "k",
        "k_aux",
        "normalize",
        "dead_threshold",
    )
    reference_type: ClassVar[str] = "sentence_transformers.sparse_encoder.models.SparseAutoEncoder"

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int = 512,
        k: int = 8,
        k_aux: int = 512,
        normalize: bool = False,
        dead_threshold: int = 30,
    ) -> None:
        super().__init__()
        if input_dim <= 0 or hidden_dim <= 0:
            raise ValueError(f"input_dim and hidden_dim must be positive, got {input_dim} and {hidden_dim}.")
        if k <= 0:
            raise ValueError(f"k must be a positive number of latents, got {k}.")
        if k_aux < 0:
            raise ValueError(f"k_aux must be 0 (no auxiliary loss) or positive, got {k_aux}.")
        self.input_dim = input_dim
        self.hidden_dim = hidden_dim
        self.k = k
        self.k_aux = k_aux
        self.normalize = normalize
        self.dead_threshold = dead_threshold
        self.pre_bias = nn.Parameter(torch.zeros(input_dim))
        self.encoder = nn.Linear(input_dim, hidden_dim, bias=False)
        self.latent_bias = nn.Parameter(torch.zeros(hidden_dim))
        # selections since each latent was last chosen: two per training pass (see forward); saved too
        self.stats_last_nonzero: Tensor
        self.register_buffer("stats_last_nonzero", torch.zeros(hidden_dim, dtype=torch.long))

    def get_sentence_embedding_dimension(self) -> int:
        """Width of the output vectors (``hidden_dim``); at most ``k`` of their entries are non-zero."""
        return self.hidden_dim

    get_embedding_dimension = get_sentence_embedding_dimension

    # --- the pieces of a forward pass ---------------------------------------------------------------------

    def encode_pre_act(self, x: Tensor) -> Tensor:
        """All latents of (standardized) inputs ``x``, before top-k and ReLU."""
        return F.linear(x - self.pre_bias, self.encoder.weight, self.latent_bias)

    def decode(self, latents: Tensor, scale: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """Reconstruct inputs from ``latents``; ``scale`` = (mean, std) undoes the input standardization."""
        out = latents @ self.encoder.weight + self.pre_bias
        return out if scale is None else out * scale[1] + scale[0]

    def top_k(self, latents: Tensor, k: int) -> Tensor:
        """Keep the ``k`` largest latents of each row, then ReLU; the others are 0."""
        top = torch.topk(latents, k=min(k, latents.shape[-1]), dim=-1)
        return F.relu(torch.zeros_like(latents).scatter_(-1, top.indices, top.values))

    def _standardize(self, x: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor] | None]:
        if not self.normalize:
            return x, None
        mean = x.mean(dim=-1, keepdim=True)
        std = (x - mean).std(dim=-1, keepdim=True)
        return (x - mean) / (std + 1e-5), (mean, std)

    def _count_steps(self, latents: Tensor, k: int) -> None:
        """Training statistics: reset the counter of each latent among a row's top ``k``, age all by one."""
        if not (self.training and torch.is_grad_enabled()):
            return
        top = torch.topk(latents, k=min(k, latents.shape[-1]), dim=-1)
        active = torch.zeros_like(self.stats_last_nonzero)
        active.scatter_add_(0, top.indices.reshape(-1), (top.values > 1e-5).to(active.dtype).reshape(-1))
        self.stats_last_nonzero *= 1 - active.clamp(max=1)
        self.stats_last_nonzero += 1

    # --- forward / load -----------------------------------------------------------------------------------

    def forward(self, features: Features, max_active_dims: int | None = None) -> Features:
        """Replace ``sentence_embedding`` by its top-k codes (and add the training outputs, see the module).

        Args:
            features: Holds the dense ``sentence_embedding``.
            max_active_dims: Latents to keep instead of ``k``; also read from ``features["max_active_dims"]``
                (where the encode loop puts it).
        """
        if max_active_dims is None:
            max_active_dims = features.get("max_active_dims")
        k = int(max_active_dims) if max_active_dims is not None else self.k
        x: Tensor = features["sentence_embedding"]
        x_in, scale = self._standardize(x)
        latents = self.encode_pre_act(x_in)
        codes_k = self.top_k(latents, k)
        features["sentence_embedding"] = codes_k
        if torch.is_inference_mode_enabled():  # encoding: the codes are all that is needed
            return features

        # As in the reference, a training pass counts twice, after the top-k selection and after the top-4k
        # one, and the auxiliary codes are picked between the two.
        self._count_steps(latents, k)
        codes_aux = None
        if self.k_aux:
            dead = self.stats_last_nonzero > self.dead_threshold
            codes_aux = self.top_k(latents * dead, self.k_aux)
        codes_4k = self.top_k(latents, 4 * k)
        self._count_steps(latents, 4 * k)
        decoded_k = self.decode(codes_k, scale)
        decoder_bias = self.pre_bias if scale is None else self.pre_bias * scale[1]
        decoded_aux = None
        if codes_aux is not None:
            decoded_aux = codes_aux @ self.encoder.weight + self.pre_bias
            decoded_aux = decoded_aux if scale is None else decoded_aux * scale[1]
        features.update(
            {
                "sentence_embedding_backbone": x,
                "sentence_embedding_encoded": latents,
                "sentence_embedding_encoded_4k": codes_4k,
                "auxiliary_embedding": codes_aux,
                "decoded_embedding_k": decoded_k,
                "decoded_embedding_4k": self.decode(codes_4k, scale),
                "decoded_embedding_aux": decoded_aux,
                "decoded_embedding_k_pre_bias": decoded_k - decoder_bias,
            }
        )
        return features

    def load_weights(self, path: Path) -> None:
        """Load the weights, accepting the reference's name for the shared encoder weight."""
        st_file, bin_file = path / "model.safetensors", path / "pytorch_model.bin"
        if st_file.is_file():
            stored = load_file(str(st_file))
        elif bin_file.is_file():  # holds the shared weight under both names
            stored = torch.load(bin_file, map_location="cpu", weights_only=True)
        else:
            super().load_weights(path)  # raises the missing-weights error
            return
        state = {_WEIGHT_ALIASES.get(name, name): value for name, value in stored.items()}
        try:
            missing, unexpected = self.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # shapes that differ from config.json's
            raise ModelFormatError(f"Weights in {path} do not fit SparseAutoEncoder: {exc}") from exc
        if missing or unexpected:
            raise ModelFormatError(
                f"Weights in {path} do not fit SparseAutoEncoder: missing {missing}, unexpected {unexpected}."
            )

    def __repr__(self) -> str:
        return f"SparseAutoEncoder({self.get_config()})"
