"""CSR losses: train a SparseAutoEncoder head to reconstruct dense embeddings and to rank with its codes.

CSR ("Contrastive Sparse Representation", Beyond Matryoshka) puts a top-k sparse autoencoder on a dense
encoder. In training mode the :class:`~sentencekit.modules.SparseAutoEncoder` adds to the features the
dense input (``sentence_embedding_backbone``), its reconstructions from the top-k and top-4k codes
(``decoded_embedding_k``, ``decoded_embedding_4k``), the auxiliary reconstruction from dead latents
(``decoded_embedding_aux``) and the top-k reconstruction before the decoder bias
(``decoded_embedding_k_pre_bias``); these losses read them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sentencekit.errors import InvalidInputError
from sentencekit.losses._common import Features, features_to_device
from sentencekit.sparse_encoder.losses.ranking import SparseMultipleNegativesRankingLoss

__all__ = ["CSRLoss", "CSRReconstructionLoss", "normalized_mean_squared_error"]

# What a SparseAutoEncoder adds to the features in training mode.
_RECONSTRUCTION_KEYS = (
    "sentence_embedding_backbone",
    "decoded_embedding_k",
    "decoded_embedding_4k",
    "decoded_embedding_aux",
    "decoded_embedding_k_pre_bias",
)


def normalized_mean_squared_error(reconstruction: Tensor, target: Tensor) -> Tensor:
    """MSE of ``reconstruction`` divided by the MSE of predicting every row as the batch mean of ``target``.

    1 means "no better than the mean". When that baseline is 0 (a batch of identical rows) the plain MSE
    is returned.
    """
    baseline = F.mse_loss(target.mean(dim=0, keepdim=True).expand_as(target), target)
    degenerate = (baseline == 0) | (target == target[:1]).all()
    baseline = torch.where(degenerate, torch.ones_like(baseline), baseline)
    return F.mse_loss(reconstruction, target) / baseline


class CSRReconstructionLoss(nn.Module):
    """The reconstruction terms of CSR, from the outputs of a model ending in a SparseAutoEncoder.

    Per column: ``mse(x, decode(top_k))``, ``mse(x, decode(top_4k))`` and the normalized MSE of the
    auxiliary reconstruction against the residual ``x - decode_pre_bias(top_k)``; each averaged over the
    columns. Returned as ``reconstruction_loss_k``, ``reconstruction_loss_4k`` (divided by 8) and
    ``reconstruction_loss_aux`` (times ``beta``).

    ======================================  ======================================
    Inputs                                  Labels
    ======================================  ======================================
    the model's output dict per column      none
    ======================================  ======================================

    When to use: through :class:`CSRLoss`, which builds it; calling it on features raises
    ``NotImplementedError``.

    Args:
        model: The SparseEncoder (with a SparseAutoEncoder module) being trained.
        beta: Weight of the auxiliary term, which revives dead latents.

    Example:
        >>> reconstruction = losses.CSRReconstructionLoss(model)  # doctest: +SKIP
        >>> terms = reconstruction.compute_loss_from_embeddings(outputs)  # doctest: +SKIP
    """

    def __init__(self, model: nn.Module, beta: float = 1.0) -> None:
        super().__init__()
        self.model = model
        self.beta = beta

    def forward(
        self, sentence_features: Iterable[Features], labels: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Refuse: the reconstruction terms are computed inside :class:`CSRLoss`."""
        raise NotImplementedError(
            "CSRReconstructionLoss is part of CSRLoss: train with CSRLoss(model, loss=...), which adds these "
            "reconstruction terms to the ranking loss."
        )

    def compute_loss_from_embeddings(self, outputs: Sequence[dict[str, Any]]) -> dict[str, Tensor]:
        """The three reconstruction terms from the model's output dict of each column."""
        if not outputs:
            raise InvalidInputError("CSRReconstructionLoss needs the model outputs of at least one column.")
        missing = [key for key in _RECONSTRUCTION_KEYS if key not in outputs[0]]
        if missing:
            raise InvalidInputError(
                f"The model's outputs lack {missing}: CSR losses need a model ending in a SparseAutoEncoder "
                "module, run in training mode (model.train())."
            )
        k_terms, k4_terms, aux_terms = [], [], []
        for output in outputs:
            x = output["sentence_embedding_backbone"]
            k_terms.append(F.mse_loss(x, output["decoded_embedding_k"]))
            k4_terms.append(F.mse_loss(x, output["decoded_embedding_4k"]))
            aux = output["decoded_embedding_aux"]
            if aux is None:  # no dead latents to revive
                aux_terms.append(torch.zeros_like(k_terms[-1]))
            else:
                residual = x - output["decoded_embedding_k_pre_bias"].detach()
                aux_terms.append(normalized_mean_squared_error(aux, residual))
        return {
            "reconstruction_loss_k": torch.stack(k_terms).mean(),
            "reconstruction_loss_4k": torch.stack(k4_terms).mean() / 8.0,
            "reconstruction_loss_aux": self.beta * torch.stack(aux_terms).mean(),
        }

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {"beta": self.beta}


class CSRLoss(nn.Module):
    """Trains a CSR model: reconstruction terms of its SparseAutoEncoder plus a weighted ranking loss.

    Each column runs through the model once; :class:`CSRReconstructionLoss` reads the autoencoder's
    reconstructions from the outputs and the inner loss scores the sparse embeddings. The result is a dict:
    ``reconstruction_loss_k``, ``reconstruction_loss_4k``, ``reconstruction_loss_aux`` and ``base_loss``
    (or the inner loss's own terms), the latter multiplied by ``gamma``.

    ======================================  ======================================
    Inputs (text columns, in order)         Labels
    ======================================  ======================================
    whatever the inner loss takes           whatever the inner loss takes
    ======================================  ======================================

    When to use: to train a SparseEncoder made of a dense encoder (Transformer + Pooling) and a
    SparseAutoEncoder; for SPLADE models use :class:`SpladeLoss`.

    Related: :class:`SparseMultipleNegativesRankingLoss` (the default inner loss), :class:`SpladeLoss`.

    Args:
        model: The SparseEncoder (ending in a SparseAutoEncoder) being trained.
        loss: The inner loss (with ``compute_loss_from_embeddings``); default
            :class:`SparseMultipleNegativesRankingLoss`.
        beta: Weight of the auxiliary reconstruction term.
        gamma: Weight of the inner loss.

    Example:
        >>> loss = losses.CSRLoss(model, losses.SparseMultipleNegativesRankingLoss(model))  # doctest: +SKIP
        >>> terms = loss([model.tokenize(["a query"]), model.tokenize(["a passage"])])  # doctest: +SKIP
    """

    loss: Any  # duck-typed: it needs a compute_loss_from_embeddings method

    def __init__(
        self, model: nn.Module, loss: nn.Module | None = None, beta: float = 0.1, gamma: float = 1.0
    ) -> None:
        super().__init__()
        self.model = model
        self.beta = beta
        self.gamma = gamma
        self.reconstruction_loss = CSRReconstructionLoss(model, beta=beta)
        self.loss = loss if loss is not None else SparseMultipleNegativesRankingLoss(model)
        if not callable(getattr(self.loss, "compute_loss_from_embeddings", None)):
            raise ValueError(
                "CSRLoss needs an inner loss with a compute_loss_from_embeddings(embeddings, labels) "
                f"method, which {type(self.loss).__name__} lacks; use e.g. "
                "SparseMultipleNegativesRankingLoss(model)."
            )

    def forward(
        self, sentence_features: Iterable[Features], labels: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Run every column through the model once; return the reconstruction and ranking terms."""
        device = next((p.device for p in self.model.parameters()), torch.device("cpu"))
        outputs = [self.model(features_to_device(f, device)) for f in sentence_features]
        terms = self.reconstruction_loss.compute_loss_from_embeddings(outputs)
        base = self.loss.compute_loss_from_embeddings([o["sentence_embedding"] for o in outputs], labels)
        for name, value in base.items() if isinstance(base, dict) else [("base_loss", base)]:
            terms[name] = value * self.gamma
        return terms

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {"beta": self.beta, "gamma": self.gamma, "loss": type(self.loss).__name__}
