"""AdaptiveLayerLoss and Matryoshka2dLoss: train the earlier layers to give usable embeddings too."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sentencekit.losses._common import Features, features_to_device, loss_on_embeddings
from sentencekit.losses.matryoshka import MatryoshkaLoss

__all__ = ["AdaptiveLayerLoss", "LayerEmbeddings", "Matryoshka2dLoss"]

_HALF = (torch.float16, torch.bfloat16)


class LayerEmbeddings:
    """One column's encoder pass with every hidden state kept; embeds any layer through the later modules.

    The first module (a :class:`~sentencekit.models.Transformer`) runs once with ``output_hidden_states``;
    the modules after it (pooling, dense, normalize, ...) are applied to the last layer for the final
    embedding and to hidden state ``i`` for layer ``i`` (0 is the embedding layer's output).
    """

    def __init__(self, model: nn.Module, features: Features) -> None:
        from sentencekit.modules import Transformer

        modules = list(model.children())
        if not modules or not isinstance(modules[0], Transformer):
            raise ValueError(
                "AdaptiveLayerLoss needs a SentenceTransformer whose first module is a Transformer (torch "
                "backend), so that intermediate layers can be pooled."
            )
        transformer, self._rest = modules[0], modules[1:]
        previous = transformer.output_hidden_states
        transformer.output_hidden_states = True
        try:
            device = next(transformer.parameters()).device
            self._base = transformer(features_to_device(dict(features), device))
        finally:
            transformer.output_hidden_states = previous
        self.num_layers = len(self._base["all_layer_embeddings"])

    def _pool(self, features: Features) -> Tensor:
        for module in self._rest:
            features = module(features)
        embedding: Tensor = features["sentence_embedding"]
        return embedding

    def final(self) -> Tensor:
        """The model's usual sentence embedding (from the last layer)."""
        return self._pool(dict(self._base))

    def layer(self, index: int) -> Tensor:
        """The sentence embedding built from hidden state ``index``."""
        hidden = self._base["all_layer_embeddings"][index]
        return self._pool(
            {**self._base, "token_embeddings": hidden.float() if hidden.dtype in _HALF else hidden}
        )


def _layer_weight(scheme: str | Callable[[int], float], index: int) -> float:
    if callable(scheme):
        return float(scheme(index))
    if scheme == "log":
        return 1.0 / (1.0 + math.log(1 + index))
    if scheme == "linear":
        return 1.0 / (1 + index)
    return 1.0


class AdaptiveLayerLoss(nn.Module):
    """Applies another loss to the final embeddings and to embeddings pooled from earlier layers.

    Each step, the inner loss is computed on the final embeddings (weight ``last_layer_weight``) and on
    ``n_layers_per_step`` randomly chosen earlier layers (each weighted by the layer weighting, divided by
    the number of chosen layers, times ``prior_layers_weight``). With ``kl_temperature > 0``, each chosen
    layer's embeddings are also pulled toward the final ones by a KL divergence of their temperature
    softmaxes (weight ``kl_div_weight``). The encoder runs once per column; afterwards the model can be
    truncated to its first layers for faster inference.

    ======================================  ======================================
    Inputs (text columns, in order)         Labels
    ======================================  ======================================
    whatever the inner loss takes           whatever the inner loss takes
    ======================================  ======================================

    When to use: when inference may drop the last layers for speed (``model[0].auto_model.encoder.layer =
    model[0].auto_model.encoder.layer[:k]``). Not with a cached (GradCache) loss.

    Related: :class:`Matryoshka2dLoss` (layers and dimensions), :class:`MatryoshkaLoss`.

    Args:
        model: The SentenceTransformer being trained (first module a Transformer).
        loss: The inner loss, built on the same model.
        n_layers_per_step: Earlier layers trained per step (``-1`` or more than there are: all).
        last_layer_weight: Weight of the final layer's loss.
        prior_layers_weight: Weight of the earlier layers' (averaged) loss.
        kl_div_weight: Weight of the KL term that aligns earlier layers with the last.
        kl_temperature: Temperature of that KL term; 0 switches it off.
        layer_weighting: ``"uniform"``, ``"log"`` (``1 / (1 + ln(1 + i))``), ``"linear"``
            (``1 / (1 + i)``), or a callable from the layer index to a weight.

    Example:
        >>> inner = losses.MultipleNegativesRankingLoss(model)  # doctest: +SKIP
        >>> loss = losses.AdaptiveLayerLoss(model, inner)  # doctest: +SKIP
        >>> loss([model.tokenize(["q"]), model.tokenize(["a"])], None).backward()  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module,
        n_layers_per_step: int = 1,
        last_layer_weight: float = 1.0,
        prior_layers_weight: float = 1.0,
        kl_div_weight: float = 1.0,
        kl_temperature: float = 0.3,
        layer_weighting: str | Callable[[int], float] = "uniform",
    ) -> None:
        super().__init__()
        if not callable(layer_weighting) and layer_weighting not in ("uniform", "log", "linear"):
            raise ValueError(
                f"layer_weighting must be 'uniform', 'log', 'linear' or a callable, got {layer_weighting!r}."
            )
        if getattr(loss, "uses_gradient_cache", False):
            raise ValueError(
                f"AdaptiveLayerLoss cannot wrap {type(loss).__name__}: a cached loss re-embeds in its "
                "backward pass, which intermediate layers cannot join. Use MultipleNegativesRankingLoss."
            )
        self.model = model
        self.loss = loss
        self.n_layers_per_step = int(n_layers_per_step)
        self.last_layer_weight = float(last_layer_weight)
        self.prior_layers_weight = float(prior_layers_weight)
        self.kl_div_weight = float(kl_div_weight)
        self.kl_temperature = float(kl_temperature)
        self.layer_weighting = layer_weighting

    def _chosen_layers(self, num_layers: int) -> list[int]:
        candidates = list(range(num_layers - 1))  # every hidden state but the last, which is the final layer
        if 0 < self.n_layers_per_step < len(candidates):
            return random.sample(candidates, self.n_layers_per_step)
        return candidates

    def forward(self, sentence_features: Iterable[Features], labels: Any) -> Tensor:
        """Run the encoder once per column and sum the inner loss over the final and the chosen layers."""
        features = list(sentence_features)
        columns = [LayerEmbeddings(self.model, f) for f in features]
        final = [c.final() for c in columns]
        loss = loss_on_embeddings(self.loss, self.model, features, final, labels) * self.last_layer_weight
        layers = self._chosen_layers(columns[0].num_layers)
        if self.kl_temperature > 0:
            target = torch.softmax(torch.cat(final) / self.kl_temperature, dim=-1).detach()
        for index in layers:
            embeddings = [c.layer(index) for c in columns]
            value = loss_on_embeddings(self.loss, self.model, features, embeddings, labels)
            loss = (
                loss
                + value * _layer_weight(self.layer_weighting, index) / len(layers) * self.prior_layers_weight
            )
            if self.kl_temperature > 0:
                log_probs = F.log_softmax(torch.cat(embeddings) / self.kl_temperature, dim=-1)
                kl = F.kl_div(log_probs, target, reduction="batchmean")
                loss = loss + kl * self.kl_temperature * self.kl_div_weight
        return loss

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        weighting = self.layer_weighting
        return {
            "loss": type(self.loss).__name__,
            "n_layers_per_step": self.n_layers_per_step,
            "last_layer_weight": self.last_layer_weight,
            "prior_layers_weight": self.prior_layers_weight,
            "kl_div_weight": self.kl_div_weight,
            "kl_temperature": self.kl_temperature,
            "layer_weighting": weighting
            if isinstance(weighting, str)
            else getattr(weighting, "__name__", "custom"),
        }


class Matryoshka2dLoss(AdaptiveLayerLoss):
    """:class:`AdaptiveLayerLoss` around :class:`MatryoshkaLoss` (2D Matryoshka Sentence Embeddings).

    The embeddings work when cut in size *and* when taken from earlier layers.

    ======================================  ======================================
    Inputs (text columns, in order)         Labels
    ======================================  ======================================
    whatever the inner loss takes           whatever the inner loss takes
    ======================================  ======================================

    When to use: when both the embedding size and the number of layers may be reduced at inference.

    Related: :class:`MatryoshkaLoss`, :class:`AdaptiveLayerLoss`.

    Args:
        model: The SentenceTransformer being trained.
        loss: The inner loss, built on the same model.
        matryoshka_dims: Sizes to train, largest (the full width) first or in any order.
        matryoshka_weights: Weight of each size (default 1 each).
        n_layers_per_step: Earlier layers trained per step (``-1``: all).
        n_dims_per_step: Sizes trained per layer and step (``-1``: all).
        last_layer_weight: Weight of the final layer's loss.
        prior_layers_weight: Weight of the earlier layers' loss.
        kl_div_weight: Weight of the KL term aligning earlier layers with the last.
        kl_temperature: Temperature of that KL term; 0 switches it off.
        layer_weighting: ``"uniform"``, ``"log"``, ``"linear"`` or a callable.

    Example:
        >>> inner = losses.CoSENTLoss(model)  # doctest: +SKIP
        >>> loss = losses.Matryoshka2dLoss(model, inner, [384, 256, 128, 64])  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module,
        matryoshka_dims: Sequence[int],
        matryoshka_weights: Sequence[float] | None = None,
        n_layers_per_step: int = 1,
        n_dims_per_step: int = 1,
        last_layer_weight: float = 1.0,
        prior_layers_weight: float = 1.0,
        kl_div_weight: float = 1.0,
        kl_temperature: float = 0.3,
        layer_weighting: str | Callable[[int], float] = "uniform",
    ) -> None:
        matryoshka = MatryoshkaLoss(
            model, loss, matryoshka_dims, matryoshka_weights, n_dims_per_step=n_dims_per_step
        )
        super().__init__(
            model,
            matryoshka,
            n_layers_per_step=n_layers_per_step,
            last_layer_weight=last_layer_weight,
            prior_layers_weight=prior_layers_weight,
            kl_div_weight=kl_div_weight,
            kl_temperature=kl_temperature,
            layer_weighting=layer_weighting,
        )

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        get_config = getattr(self.loss, "get_config_dict", None)
        inner = get_config() if callable(get_config) else {}
        return {**super().get_config_dict(), **inner}
