"""RankNet: the pairwise logistic loss over every correctly-ordered document pair of each list."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

from sentencekit.cross_encoder.losses.lambda_loss import LambdaLoss, NoWeightingScheme

if TYPE_CHECKING:
    from sentencekit.cross_encoder.model import CrossEncoder

__all__ = ["RankNetLoss"]


class RankNetLoss(LambdaLoss):
    """RankNet: for every pair with ``label_i > label_j``, ``-log(sigmoid(sigma * (s_i - s_j)))``, averaged.

    This is :class:`LambdaLoss` with every pair weighing the same (:class:`NoWeightingScheme`): it makes the
    model order each pair correctly without caring where in the list the pair sits.

    ==========================================  =========================================================
    Inputs (columns)                            Labels
    ==========================================  =========================================================
    (query, [doc_1, ..., doc_n])                ``[label_1, ..., label_n]`` (binary or graded relevance)
    ==========================================  =========================================================

    Lists may differ in length; shorter ones are padded and the padding is ignored.

    When to use: a simple, robust pairwise baseline for rerankers on labelled candidate lists, or to distil
    a teacher's scores (only their order matters).

    Related: :class:`LambdaLoss` (weights the pairs by their nDCG effect; usually better),
    :class:`ListNetLoss`, :class:`ListMLELoss`, :class:`ADRMSELoss` (other listwise losses on the same data).

    Args:
        model: A CrossEncoder with ``num_labels=1``.
        k: Only pairs with a document in the top ``k`` predicted positions count (``None``: all).
        sigma: Steepness of the pairwise logistic.
        eps: Floor of the ideal DCG; kept for :class:`LambdaLoss`'s arithmetic, it does not change RankNet.
        reduction_log: ``"binary"`` (log base 2) or ``"natural"``.
        activation_fn: Applied to the logits (identity by default).
        mini_batch_size: Pairs per forward pass (``None``: as many as queries in the batch; ``<= 0``: all).

    Example:
        >>> loss = losses.RankNetLoss(model)  # doctest: +SKIP
        >>> loss([["what is a cat"], [["A cat is a pet.", "Cats purr.", "Paris"]]],
        ...      [torch.tensor([1.0, 1.0, 0.0])]).backward()  # doctest: +SKIP
    """

    def __init__(
        self,
        model: CrossEncoder,
        k: int | None = None,
        sigma: float = 1.0,
        eps: float = 1e-10,
        reduction_log: str = "binary",
        activation_fn: nn.Module | None = None,
        mini_batch_size: int | None = None,
    ) -> None:
        super().__init__(
            model,
            weighting_scheme=NoWeightingScheme(),
            k=k,
            sigma=sigma,
            eps=eps,
            reduction_log=reduction_log,
            activation_fn=activation_fn,
            mini_batch_size=mini_batch_size,
        )

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card (the weighting is fixed, so it is not listed)."""
        config = super().get_config_dict()
        del config["weighting_scheme"]
        return config
