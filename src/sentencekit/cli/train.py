"""``sentencekit train``: fine-tune a model from a JSON or YAML configuration file.

Examples::

    sentencekit train stsb.yaml
    sentencekit train stsb.json --resume        # continue from the latest checkpoint

A configuration names the model, the data files and their columns, the loss, the epochs, batch size,
learning rate and warm-up, the output folder and optionally an STS evaluator (see docs/training.md):

    {"model": "all-MiniLM-L6-v2",
     "train": {"path": "stsb-en-train.csv", "columns": ["sentence1", "sentence2", "score"],
               "label": "score", "label_divisor": 5},
     "loss": "CoSENTLoss", "epochs": 1, "batch_size": 16, "warmup_ratio": 0.1,
     "evaluator": {"type": "sts", "path": "stsb-en-dev.csv"},
     "output_dir": "minilm-stsb"}

The trained model (with its README.md model card) is saved to output_dir; checkpoints, when save_steps is
set, to output_dir/checkpoints. A bad configuration is reported in one line, with exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path
from typing import Any

from sentencekit.cli.main import EXIT_USER_ERROR, plain_help

__all__ = ["add_parser", "run_train"]

logger = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``train`` to the ``sentencekit`` parser."""
    parser = subparsers.add_parser(
        "train",
        help="fine-tune a model from a JSON/YAML configuration (data files, loss, epochs, ...)",
        description=plain_help(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", type=Path, help="configuration file (.json, or .yaml with PyYAML)")
    parser.add_argument(
        "--resume", action="store_true", help="continue from the latest checkpoint in output_dir/checkpoints"
    )
    parser.set_defaults(handler=run_train)


def _load_loss(name: str, cross_encoder: bool) -> Any:
    """A loss class by its name in sentencekit's losses, or by a ``module:Class`` / ``module.Class`` path."""
    if ":" in name or "." in name:
        module, _, attribute = name.replace(":", ".").rpartition(".")
        try:
            return getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError):
            raise ValueError(f"loss {name!r} cannot be imported") from None
    package = importlib.import_module(
        "sentencekit.cross_encoder.losses" if cross_encoder else "sentencekit.losses"
    )
    if name not in getattr(package, "__all__", []):
        available = ", ".join(getattr(package, "__all__", []))
        raise ValueError(f"unknown loss {name!r}; available: {available}")
    return getattr(package, name)


def _prepare(config_path: Path, resume: bool) -> tuple[Any, Any, Any]:
    """Read the configuration and data and build the model, loss and trainer (every user error is here)."""
    from sentencekit.training.config import read_config

    config = read_config(config_path)
    cross = config.model_type == "cross-encoder"
    loss_class = _load_loss(config.loss, cross)
    datasets = {f.path.stem: f.read() for f in config.train}
    if resume and not (config.output_dir / "checkpoints").is_dir():
        raise ValueError(f"--resume: no checkpoints in {config.output_dir / 'checkpoints'}")
    from sentencekit.training.arguments import SentenceTransformerTrainingArguments

    args = SentenceTransformerTrainingArguments(
        output_dir=str(config.output_dir / "checkpoints"),
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_ratio=config.warmup_ratio,
        seed=config.seed,
        batch_sampler=config.batch_sampler,
        multi_dataset_batch_sampler=config.multi_dataset_batch_sampler,
        save_strategy="steps" if config.save_steps else "no",
        save_steps=config.save_steps or 500,
        eval_strategy="epoch" if config.evaluator else "no",
    )
    if cross:
        from sentencekit.cross_encoder import CrossEncoder

        model: Any = CrossEncoder(config.model, num_labels=config.num_labels)
    else:
        from sentencekit import SentenceTransformer

        model = SentenceTransformer(config.model)
    if config.max_seq_length:
        model.max_seq_length = config.max_seq_length
    try:
        loss = loss_class(model, **config.loss_kwargs)
    except TypeError as exc:
        raise ValueError(f"loss {config.loss}: {exc}") from None
    evaluator = _evaluator(config.evaluator, cross) if config.evaluator else None
    from sentencekit.training.trainer import CrossEncoderTrainer, SentenceTransformerTrainer

    trainer_class = CrossEncoderTrainer if cross else SentenceTransformerTrainer
    data = next(iter(datasets.values())) if len(datasets) == 1 else datasets
    trainer = trainer_class(model, args, train_dataset=data, loss=loss, evaluator=evaluator)
    return config, model, trainer


def _evaluator(spec: dict[str, Any], cross: bool) -> Any:
    from sentencekit.readers import read_sts_csv

    first, second, scores = read_sts_csv(spec["path"])
    if cross:
        from sentencekit.evaluation import CrossEncoderCorrelationEvaluator

        pairs = [[a, b] for a, b in zip(first, second, strict=True)]
        return CrossEncoderCorrelationEvaluator(pairs, scores, name=spec["name"])
    from sentencekit.evaluation import EmbeddingSimilarityEvaluator

    return EmbeddingSimilarityEvaluator(first, second, scores, name=spec["name"])


def run_train(args: argparse.Namespace) -> int:
    """Train as the configuration says; returns the exit code."""
    try:
        config, model, trainer = _prepare(args.config, args.resume)
    except (ValueError, TypeError) as exc:  # InvalidInputError is a ValueError
        print(f"sentencekit: error: {args.config}: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    state = trainer.train(resume_from_checkpoint=True if args.resume else None)
    model.save(str(config.output_dir))
    print(f"Trained {state.global_step} steps in {state.train_seconds:.1f} s; saved to {config.output_dir}")
    for key, value in state.metrics.items():
        print(f"  {key}: {value:.4f}")
    return 0
