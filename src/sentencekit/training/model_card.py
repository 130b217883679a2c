"""The model card (``README.md``) a trained model carries: how it was made and how well it does.

Training attaches a :class:`TrainingRecord` to the model as ``model.training_record``; the model's ``save``
then calls :func:`write_model_card`, which adds what ``model.model_card_data``
(:mod:`sentencekit.model_card`) says: language, license, title, dataset ids, tags. A model that was never
trained here and whose card data is the default gets no card.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentencekit import __version__
from sentencekit.model_card import CrossEncoderModelCardData, SentenceTransformerModelCardData

__all__ = ["DatasetInfo", "TrainingRecord", "card_data", "render_model_card", "write_model_card"]

logger = logging.getLogger(__name__)


@dataclass
class DatasetInfo:
    """One training dataset (or ``DataLoader``) and the loss trained on it."""

    name: str
    rows: int | None
    columns: list[str]
    label_column: str | None
    loss: str
    loss_config: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainingRecord:
    """What the card says about training; filled in by ``fit`` and the trainers.

    Attributes:
        model_class: ``"SentenceTransformer"`` or ``"CrossEncoder"``.
        base_model: The model training started from.
        datasets: Each objective's data and loss.
        hyperparameters: The settings that shaped the run.
        metrics: The last evaluation's results.
        steps: Optimizer steps taken.
        epochs: Epochs completed.
        train_seconds: Training wall time.
        final_loss: The last logged mean training loss.
    """

    model_class: str
    base_model: str | None
    datasets: list[DatasetInfo]
    hyperparameters: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    epochs: int = 0
    train_seconds: float = 0.0
    final_loss: float | None = None

    def update(self, state: Any) -> None:
        """Copy progress and results from a :class:`~sentencekit.training.state.TrainingState`."""
        self.steps = state.global_step
        self.epochs = state.epoch
        self.train_seconds = state.train_seconds
        if state.metrics:
            self.metrics = dict(state.metrics)
        losses = [
            entry["loss"] for entry in state.log_history if "loss" in entry and "learning_rate" in entry
        ]
        if losses:
            self.final_loss = float(losses[-1])


def loss_config(loss: Any) -> dict[str, Any]:
    """A loss's settings, from its ``get_config_dict`` when it has one."""
    getter = getattr(loss, "get_config_dict", None)
    try:
        config = getter() if callable(getter) else {}
    except Exception:  # a third-party loss may fail here; the card is informative only
        config = {}
    return {key: _plain(value) for key, value in dict(config).items()}


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return getattr(value, "__name__", None) or type(value).__name__


def render_model_card(record: TrainingRecord | None, model: Any) -> str:
    """The card's Markdown text for ``model``: its card data, and how it was trained when ``record`` says."""
    is_bi = hasattr(model, "get_sentence_embedding_dimension")
    model_class = type(model).__name__ if type(model).__name__ == "SparseEncoder" else None
    model_class = model_class or ("SentenceTransformer" if is_bi else "CrossEncoder")
    data = card_data(model)
    base = record.base_model if record is not None else None
    lines = ["---", *_front_matter(data, base, is_bi), "---", ""]
    kind = {"SparseEncoder": "sparse embedding model", "CrossEncoder": "cross-encoder"}.get(
        model_class, "sentence embedding model"
    )
    origin = base or "a model built in code"
    title = data.model_name or (f"A {kind} fine-tuned from {origin}" if record is not None else f"A {kind}")
    made = f"fine-tuned from `{origin}`" if record is not None else "saved"
    loader = f'{model_class}("{data.model_id}")' if data.model_id else f"{model_class}(path)"
    lines += [
        f"# {title}",
        "",
        f"This {model_class} was {made} with sentencekit {__version__}"
        + (f", for {data.task_name}" if data.task_name else "")
        + f". It loads in sentencekit and in sentence-transformers (`{loader}`).",
        "",
        "## Model",
        "",
        *_model_facts(model, is_bi),
    ]
    if record is not None:
        lines += _training_sections(record)
    evaluated = ", ".join(_dataset_label(d) for d in data.eval_datasets)
    if evaluated:
        lines += ["", f"Evaluation datasets: {evaluated}."]
    lines += ["", "## Versions", "", *_versions(), ""]
    return "\n".join(lines)


def card_data(model: Any) -> SentenceTransformerModelCardData:
    """``model.model_card_data``, or the defaults for its kind when it has none."""
    data = getattr(model, "model_card_data", None)
    if isinstance(data, SentenceTransformerModelCardData):
        return data
    is_bi = hasattr(model, "get_sentence_embedding_dimension")
    return SentenceTransformerModelCardData() if is_bi else CrossEncoderModelCardData()


def _front_matter(data: SentenceTransformerModelCardData, base: str | None, is_bi: bool) -> list[str]:
    lines = []
    if data.language:
        lines += ["language:", *[f"- {code}" for code in data.language]]
    if data.license:
        lines.append(f"license: {data.license}")
    kind = "sentence-similarity" if is_bi else "cross-encoder"  # always there, whatever the user's tags
    tags = list(dict.fromkeys(["sentencekit", "sentence-transformers", kind, *(data.tags or [])]))
    lines += ["library_name: sentence-transformers", "tags:", *[f"- {tag}" for tag in tags]]
    if base:
        lines.append(f"base_model: {base}")
    ids = [str(d["id"]) for d in data.train_datasets if d.get("id")]
    if ids:
        lines += ["datasets:", *[f"- {dataset_id}" for dataset_id in ids]]
    lines.append("pipeline_tag: " + ("sentence-similarity" if is_bi else "text-ranking"))
    return lines


def _dataset_label(dataset: Any) -> str:
    name, dataset_id = dataset.get("name"), dataset.get("id")
    return (
        f"`{dataset_id}`" + (f" ({name})" if name and name != dataset_id else "") if dataset_id else str(name)
    )


def _training_sections(record: TrainingRecord) -> list[str]:
    lines = [
        "",
        "## Training data and losses",
        "",
        "| dataset | rows | text columns | label | loss |",
        "|---|---|---|---|---|",
    ]
    for info in record.datasets:
        rows = "?" if info.rows is None else f"{info.rows:,}"
        columns = ", ".join(f"`{c}`" for c in info.columns) or "?"
        label = f"`{info.label_column}`" if info.label_column else "none"
        lines.append(f"| {info.name} | {rows} | {columns} | {label} | `{info.loss}` |")
    configs = {i.loss: i.loss_config for i in record.datasets if i.loss_config}
    for name, config in configs.items():
        lines += ["", f"`{name}` settings: `{json.dumps(config, sort_keys=True)}`"]
    lines += ["", "## Hyper-parameters", "", "| setting | value |", "|---|---|"]
    lines += [f"| {key} | `{_plain(value)}` |" for key, value in sorted(record.hyperparameters.items())]
    lines += ["", "## Training", ""]
    lines.append(
        f"{record.steps} optimizer steps over {record.epochs} epoch(s) in {record.train_seconds:.0f} s"
        + (f"; last logged training loss {record.final_loss:.4f}." if record.final_loss is not None else ".")
    )
    lines += ["", "## Evaluation", ""]
    if record.metrics:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {key} | {value:.4f} |" for key, value in record.metrics.items() if _is_number(value)]
    else:
        lines.append("No evaluation was run during training.")
    return lines


def _model_facts(model: Any, is_bi: bool) -> list[str]:
    facts = []
    if is_bi:
        dim = getattr(model, "get_sentence_embedding_dimension", lambda: None)()
        facts.append(f"- output: {dim}-dimensional embeddings, similarity `{model.similarity_fn_name}`")
        facts.append(f"- longest input: {model.max_seq_length} tokens")
        facts.append("- modules: " + ", ".join(type(module).__name__ for module in model))
    else:
        facts.append(f"- outputs: {model.num_labels} score(s) per pair ({model.score_description})")
        facts.append(f"- longest input pair: {model.max_length} tokens")
        facts.append(f"- architecture: {type(model.model).__name__}")
    return facts


def _versions() -> list[str]:
    import torch
    import transformers

    return [
        f"- sentencekit: {__version__}",
        f"- transformers: {transformers.__version__}",
        f"- PyTorch: {torch.__version__}",
    ]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def write_model_card(model: Any, folder: str | Path) -> None:
    """Write ``README.md`` into ``folder`` when ``model`` was trained here or its card data says something.

    Any other model gets no card: saving a downloaded model does not replace its card with an empty one.
    """
    record = getattr(model, "training_record", None)
    if not isinstance(record, TrainingRecord):
        record = None
        if not card_data(model).says_something():
            return
    path = Path(folder) / "README.md"
    path.write_text(render_model_card(record, model), encoding="utf-8")
    logger.debug("Wrote the model card %s", path)
