"""EmbedDistillLoss: the student's embeddings match precomputed teacher embeddings under a chosen distance."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sentencekit.errors import InvalidInputError
from sentencekit.losses._common import Features, check_columns, embed_columns

__all__ = ["EmbedDistillLoss"]

DISTANCE_METRICS = ("mse", "l2", "cosine")


def _distance(metric: str, student: Tensor, teacher: Tensor) -> Tensor:
    """The batch's mean distance between row-aligned student and teacher embeddings."""
    if metric == "mse":
        return F.mse_loss(student, teacher)
    if metric == "l2":
        return (student - teacher).norm(dim=-1).mean()
    return (1 - F.cosine_similarity(student, teacher, dim=-1)).mean()


class EmbedDistillLoss(nn.Module):
    """Embedding distillation: each text column's embedding is pulled towards the teacher's embedding.

    The teacher embeddings are computed once beforehand (``teacher.encode(texts)``, with whatever prompts the
    teacher needs) and passed as the label. For each column the student-teacher distance is averaged over the
    batch; the columns' distances are averaged. With ``projection_dim`` a trainable linear layer (held by the
    loss and trained with the model) maps the student's embeddings to the teacher's width first.

    ==============================================  ===================================================
    Inputs (text columns, in order)                 Labels
    ==============================================  ===================================================
    (text,)                                         teacher embeddings, ``(batch, teacher_dim)``
    (text_1, ..., text_n)                           one per column, ``(batch, n, teacher_dim)``
    (text_1, ..., text_n)                           one shared by all columns, ``(batch, teacher_dim)``
    ==============================================  ===================================================

    When to use: distilling a large model into a small one (``"l2"`` is the EmbedDistill paper's distance;
    ``"cosine"`` is bounded and ignores the norm), and multilingual distillation (the source embedding is
    the target of both the text and its translation).

    Related: :class:`MSELoss` (the same with ``distance_metric="mse"``), :class:`MarginMSELoss` and
    :class:`DistillKLDivLoss` (distil the teacher's scores instead of its embeddings).

    Args:
        model: The student SentenceTransformer.
        distance_metric: ``"cosine"`` (1 - cosine similarity), ``"l2"`` (Euclidean distance) or ``"mse"``
            (mean squared error over the components).
        projection_dim: The teacher's width, when it differs from the student's: adds the trainable
            ``Linear(student_dim, projection_dim)``. It is not saved with the model; use
            :meth:`save_projection` and :meth:`load_projection` to keep it across runs.

    Example:
        >>> targets = teacher.encode(sentences, convert_to_tensor=True)  # doctest: +SKIP
        >>> loss = losses.EmbedDistillLoss(student, "cosine", projection_dim=1024)  # doctest: +SKIP
        >>> loss([student.tokenize(sentences)], targets).backward()  # doctest: +SKIP
    """

    def __init__(
        self, model: nn.Module, distance_metric: str = "cosine", projection_dim: int | None = None
    ) -> None:
        super().__init__()
        if distance_metric not in DISTANCE_METRICS:
            raise ValueError(
                f"distance_metric must be one of {list(DISTANCE_METRICS)}, got {distance_metric!r}."
            )
        self.model = model
        self.distance_metric = distance_metric
        self.projection_dim = projection_dim
        self.projection: nn.Linear | None = None
        if projection_dim is not None:
            self.projection = nn.Linear(self._student_dim(), int(projection_dim), device=self._device())

    def forward(self, sentence_features: Iterable[Features], labels: Tensor | None) -> Tensor:
        """Embed every column and return the mean distance to the teacher embeddings in ``labels``."""
        features = list(sentence_features)
        targets = self._targets(labels, len(features))
        return self.compute_loss_from_embeddings(embed_columns(self.model, features), targets)

    def compute_loss_from_embeddings(
        self, embeddings: list[Tensor], teacher_embeddings: Tensor | Sequence[Tensor] | None
    ) -> Tensor:
        """The loss from the student's column embeddings and the teacher's.

        Args:
            embeddings: The student's embeddings, one ``(batch, dim)`` tensor per column.
            teacher_embeddings: One teacher tensor per column, or the label tensor itself
                (``(batch, teacher_dim)`` or ``(batch, columns, teacher_dim)``).
        """
        check_columns(type(self).__name__, len(embeddings), at_least=1)
        if teacher_embeddings is None or isinstance(teacher_embeddings, Tensor):
            teacher_embeddings = self._targets(teacher_embeddings, len(embeddings))
        if len(teacher_embeddings) != len(embeddings):
            raise InvalidInputError(
                f"{type(self).__name__} got {len(teacher_embeddings)} teacher embedding columns for "
                f"{len(embeddings)} text columns."
            )
        distances = []
        for student, teacher in zip(embeddings, teacher_embeddings, strict=True):
            if self.projection is not None:
                student = self.projection(student.to(self.projection.weight.dtype))
            if student.shape != teacher.shape:
                raise InvalidInputError(
                    f"Student embeddings {tuple(student.shape)} and teacher embeddings "
                    f"{tuple(teacher.shape)} differ; pass projection_dim=<teacher width> to learn a mapping."
                )
            teacher = teacher.detach().to(device=student.device, dtype=student.dtype)
            distances.append(_distance(self.distance_metric, student, teacher))
        return torch.stack(distances).mean()

    def _targets(self, labels: Tensor | None, columns: int) -> list[Tensor]:
        """One teacher tensor per column from a ``(batch, dim)`` or ``(batch, columns, dim)`` label."""
        if labels is None:
            raise InvalidInputError(
                f"{type(self).__name__} needs the teacher's embeddings as labels: compute them once with "
                "teacher.encode(texts) and store them in the dataset's 'label' column."
            )
        if labels.dim() == 2:
            return [labels] * columns
        if labels.dim() == 3 and labels.shape[1] == columns:
            return list(labels.unbind(dim=1))
        raise InvalidInputError(
            f"{type(self).__name__} expects labels of shape (batch, teacher_dim), shared by every column, or "
            f"(batch, {columns}, teacher_dim), one per column; got {tuple(labels.shape)} for {columns} "
            "text column(s)."
        )

    def save_projection(self, path: str | os.PathLike[str]) -> None:
        """Write the projection layer's weights to a safetensors file.

        Raises:
            ValueError: When the loss has no projection (built without ``projection_dim``).
        """
        from safetensors.torch import save_model

        if self.projection is None:
            raise ValueError(
                f"This {type(self).__name__} has no projection to save; build it with "
                "projection_dim=<teacher width>."
            )
        save_model(self.projection, str(path))

    def load_projection(self, path: str | os.PathLike[str]) -> None:
        """Load projection weights written by :meth:`save_projection` (creating the layer if there is none).

        Raises:
            ValueError: When the saved layer does not fit the student's width or the configured projection.
        """
        from safetensors.torch import load_file

        state = load_file(str(path))
        out_features, in_features = state["weight"].shape
        if self.projection is None:
            if in_features != self._student_dim():
                raise ValueError(
                    f"The saved projection takes {in_features}-dimensional embeddings, but the student's are "
                    f"{self._student_dim()}-dimensional."
                )
            self.projection = nn.Linear(in_features, out_features, device=self._device())
            self.projection_dim = out_features
        elif (self.projection.in_features, self.projection.out_features) != (in_features, out_features):
            raise ValueError(
                f"The saved projection maps {in_features} -> {out_features} dimensions, but this loss's maps "
                f"{self.projection.in_features} -> {self.projection.out_features}."
            )
        self.projection.load_state_dict(state)

    def _student_dim(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())  # type: ignore[operator]

    def _device(self) -> torch.device:
        return next((p.device for p in self.model.parameters()), torch.device("cpu"))

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {"distance_metric": self.distance_metric, "projection_dim": self.projection_dim}
