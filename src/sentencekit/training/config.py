"""Training configuration files (JSON, or YAML when PyYAML is installed) for ``sentencekit train``.

Example (``stsb.yaml``)::

    model: all-MiniLM-L6-v2
    train:
      path: stsb/stsb-en-train.csv
      columns: [sentence1, sentence2, score]   # the file has no header row
      label: score
      label_divisor: 5                         # 0-5 scores -> 0-1
    loss: CoSENTLoss                           # or {name: MultipleNegativesRankingLoss, scale: 20}
    epochs: 1
    batch_size: 16
    learning_rate: 2.0e-5
    warmup_ratio: 0.1
    evaluator: {type: sts, path: stsb/stsb-en-dev.csv}
    output_dir: models/minilm-stsb

``train`` is one data file or a list of them (trained together, round-robin or proportionally). Data files
are ``.csv`` / ``.tsv`` (with a header row unless ``columns`` names the columns) or ``.jsonl``. Text
columns go to the loss in order; the ``label`` column (default: ``label`` or ``score`` when present) is the
label. Relative paths (data files, output_dir, and a model folder) are read from the configuration file's
folder; a ``model`` that is no folder there is a Hub id or a name such as ``all-MiniLM-L6-v2``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sentencekit.errors import InvalidInputError, MissingDependencyError

__all__ = ["DataFile", "TrainConfig", "read_config"]

_MODEL_TYPES = ("bi-encoder", "cross-encoder")


@dataclass(frozen=True)
class DataFile:
    """One training data file and how to read it (see the module docstring)."""

    path: Path
    columns: list[str] | None = None
    text_columns: list[str] | None = None
    label: str | None = None
    label_divisor: float | None = None
    limit: int | None = None

    def read(self) -> dict[str, list[Any]]:
        """The file as ``{column: values}``: text columns in order, then ``label`` when there is one.

        Raises:
            FileNotFoundError: If the file is missing.
            InvalidInputError: For an unknown format, a missing column or a label that is not a number.
        """
        table = _read_table(self.path, self.columns, self.limit)
        label = self.label or next((c for c in ("label", "score") if c in table), None)
        if label is not None and label not in table:
            raise InvalidInputError(f"{self.path}: no label column {label!r}; the columns are {list(table)}.")
        texts = self.text_columns or [c for c in table if c != label]
        missing = [c for c in texts if c not in table]
        if missing:
            raise InvalidInputError(f"{self.path}: no column(s) {missing}; the columns are {list(table)}.")
        data = {c: [str(v) for v in table[c]] for c in texts}
        if label is not None:
            data["label"] = _numbers(self.path, label, table[label], self.label_divisor)
        return data


@dataclass(frozen=True)
class TrainConfig:
    """A validated training configuration; build it with :meth:`from_mapping` or :func:`read_config`."""

    model: str
    train: list[DataFile]
    output_dir: Path
    loss: str = "CoSENTLoss"
    loss_kwargs: dict[str, Any] = field(default_factory=dict)
    model_type: str = "bi-encoder"
    num_labels: int | None = None
    epochs: int = 1
    batch_size: int = 16
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1
    seed: int = 42
    batch_sampler: str = "batch_sampler"
    multi_dataset_batch_sampler: str = "round_robin"
    max_seq_length: int | None = None
    save_steps: int | None = None
    evaluator: dict[str, Any] | None = None

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], base: Path = Path()) -> TrainConfig:
        """Check a parsed configuration and resolve its paths against ``base``.

        Raises:
            ValueError: Naming the offending key: unknown keys (listing the valid ones), a missing required
                key, or a value of the wrong type.
        """
        if not isinstance(raw, Mapping):
            raise ValueError(f"the configuration must be a mapping of settings, got {type(raw).__name__}")
        valid = [f.name for f in fields(cls) if f.name != "loss_kwargs"]
        unknown = sorted(set(raw) - set(valid))
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown}; valid settings: {', '.join(valid)}")
        for key in ("model", "train", "output_dir"):
            if key not in raw:
                raise ValueError(f"the setting {key!r} is required")
        values: dict[str, Any] = dict(raw)
        model = _typed("model", raw["model"], str)
        values["model"] = str(base / model) if (base / model).exists() else model  # a folder or a Hub id
        files = raw["train"] if isinstance(raw["train"], list) else [raw["train"]]
        values["train"] = [_data_file(item, base) for item in files]
        values["output_dir"] = base / _typed("output_dir", raw["output_dir"], str)
        loss = raw.get("loss", cls.loss)
        if isinstance(loss, Mapping):
            if "name" not in loss:
                raise ValueError("loss: give its name, e.g. {name: MultipleNegativesRankingLoss, scale: 20}")
            values["loss"] = _typed("loss.name", loss["name"], str)
            values["loss_kwargs"] = {k: v for k, v in loss.items() if k != "name"}
        else:
            values["loss"] = _typed("loss", loss, str)
        for key, kind in (("epochs", int), ("batch_size", int), ("seed", int), ("num_labels", int)):
            if key in raw and raw[key] is not None:
                values[key] = _typed(key, raw[key], kind)
        for key in ("max_seq_length", "save_steps"):
            if raw.get(key) is not None:
                values[key] = _typed(key, raw[key], int)
        for key in ("learning_rate", "warmup_ratio"):
            if key in raw:
                values[key] = float(_typed(key, raw[key], (int, float)))
        if values.get("model_type", cls.model_type) not in _MODEL_TYPES:
            raise ValueError(f"model_type must be one of {list(_MODEL_TYPES)}, got {raw['model_type']!r}")
        if raw.get("evaluator") is not None:
            values["evaluator"] = _evaluator(raw["evaluator"], base)
        return cls(**values)


def _typed(key: str, value: Any, kind: type | tuple[type, ...]) -> Any:
    if isinstance(value, bool) or not isinstance(value, kind):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ValueError(f"{key} must be a {expected}, got {value!r}")
    return value


def _data_file(item: Any, base: Path) -> DataFile:
    if isinstance(item, str):
        item = {"path": item}
    if not isinstance(item, Mapping) or "path" not in item:
        raise ValueError(f"train: each data file needs a path, got {item!r}")
    valid = [f.name for f in fields(DataFile)]
    unknown = sorted(set(item) - set(valid))
    if unknown:
        raise ValueError(f"train: unknown setting(s) {unknown}; valid settings: {', '.join(valid)}")
    values = dict(item)
    values["path"] = base / _typed("train.path", item["path"], str)
    for key in ("columns", "text_columns"):
        if item.get(key) is not None:
            columns = _typed(f"train.{key}", item[key], list)
            values[key] = [str(c) for c in columns]
    if item.get("label_divisor") is not None:
        values["label_divisor"] = float(_typed("train.label_divisor", item["label_divisor"], (int, float)))
    if item.get("limit") is not None:
        values["limit"] = _typed("train.limit", item["limit"], int)
    return DataFile(**values)


def _evaluator(raw: Any, base: Path) -> dict[str, Any]:
    if not isinstance(raw, Mapping) or raw.get("type") != "sts" or "path" not in raw:
        raise ValueError(
            "evaluator: only {type: sts, path: FILE.csv} is supported (sentence1,sentence2,score)"
        )
    unknown = sorted(set(raw) - {"type", "path", "name"})
    if unknown:
        raise ValueError(f"evaluator: unknown setting(s) {unknown}; valid settings: type, path, name")
    return {"type": "sts", "path": base / str(raw["path"]), "name": str(raw.get("name", "sts-dev"))}


def read_config(path: str | Path) -> TrainConfig:
    """Read and check a JSON or YAML configuration file (YAML needs PyYAML).

    Raises:
        FileNotFoundError: If the file is missing.
        ValueError: If it cannot be parsed or a setting is wrong.
        MissingDependencyError: For a ``.yaml`` file without PyYAML installed.
    """
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"No such configuration file: {source}")
    text = source.read_text(encoding="utf-8")
    if source.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise MissingDependencyError(
                f"{source} is YAML, which needs PyYAML: pip install pyyaml (or write the file as JSON)."
            ) from None
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"not valid YAML: {str(exc).splitlines()[0]}") from None
    else:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc.msg} (line {exc.lineno})") from None
    return TrainConfig.from_mapping(raw, source.parent)


def _read_table(path: Path, columns: list[str] | None, limit: int | None) -> dict[str, list[Any]]:
    if not path.is_file():
        raise FileNotFoundError(f"No such data file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows = []
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise InvalidInputError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
                if limit is not None and len(rows) >= limit:
                    break
        names = columns or (list(rows[0]) if rows else [])
        return {name: [row.get(name) for row in rows] for name in names}
    if suffix not in (".csv", ".tsv"):
        raise InvalidInputError(f"{path}: data files must be .csv, .tsv or .jsonl")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t" if suffix == ".tsv" else ",")
        header = columns or next(reader, [])
        table: dict[str, list[Any]] = {name: [] for name in header}
        for number, row in enumerate(reader, start=1 if columns else 2):
            if not row:
                continue
            if len(row) < len(header):
                raise InvalidInputError(f"{path}:{number}: expected {len(header)} fields, got {len(row)}")
            for name, value in zip(header, row, strict=False):
                table[name].append(value)
            if limit is not None and number >= limit + (0 if columns else 1):
                break
    return table


def _numbers(path: Path, column: str, values: list[Any], divisor: float | None) -> list[Any]:
    numbers: list[Any] = []
    for row, value in enumerate(values):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidInputError(f"{path}: label {value!r} in row {row} is not a number") from None
        numbers.append(number)
    if divisor:
        return [n / divisor for n in numbers]
    if all(float(n).is_integer() and "." not in str(v) for n, v in zip(numbers, values, strict=True)):
        return [int(n) for n in numbers]  # class ids stay integers
    return numbers
