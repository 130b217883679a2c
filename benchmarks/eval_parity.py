"""Evaluation parity with sentence-transformers on real benchmarks (all-MiniLM-L6-v2 by default).

Usage:
    python benchmarks/eval_parity.py --json results/eval_parity.json --markdown results/eval_parity.md
    python benchmarks/eval_parity.py --model PATH --limit 100        # quick check, a few minutes on a CPU
    python benchmarks/eval_parity.py --tasks mining --json results/eval_parity_mining.json  # one task

For every task three numbers are reported:

* ``reference``: sentence-transformers' evaluator on the sentence-transformers model;
* ``sk evaluator``: sentencekit's evaluator on the same sentence-transformers embeddings (so any difference is
  the evaluator's), and
* ``sentencekit``: sentencekit's evaluator on the sentencekit model (the whole stack).

Each model embeds each distinct text once (a lookup table sits between the evaluators and the model), so the
two evaluators see identical vectors. Tasks: SciFact and Cranfield retrieval (BEIR test qrels; nDCG@10,
MRR@10, Recall@100, MAP@100), Quora duplicates test (pair classification and paraphrase mining), SNLI test
triplets, STSb test, and BANKING77 test clustering (community detection, reference vs sentencekit
implementation, and k-means; V-measure against the intent labels).

``--limit N`` keeps the first N pairs / triplets / queries of each task (retrieval then keeps the relevant
documents of those queries plus the first 2*N other documents) and N random BANKING77 texts.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sentencekit import evaluation as sk_evaluation  # noqa: E402
from sentencekit import readers  # noqa: E402
from sentencekit.hub import resolve_model_path  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data"
DEFAULT_MODEL = "all-MiniLM-L6-v2"  # a name or a folder; names are resolved (and fetched) by sentencekit


class EmbeddingTable:
    """Serve ``encode`` calls from a table filled by the wrapped model, one call per batch of unseen texts."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.table: dict[tuple[str | None, str], np.ndarray] = {}
        self.seconds = 0.0

    def __getattr__(self, name: str) -> Any:  # similarity, similarity_fn_name, model_card_data, ...
        return getattr(self.model, name)

    def encode(
        self,
        sentences: Any,
        prompt: str | None = None,
        truncate_dim: int | None = None,
        convert_to_tensor: bool = False,
        convert_to_numpy: bool = True,
        **_: Any,
    ) -> Any:
        texts = [sentences] if isinstance(sentences, str) else list(sentences)
        missing = [text for text in dict.fromkeys(texts) if (prompt, text) not in self.table]
        if missing:
            start = time.perf_counter()
            vectors = self.model.encode(missing, batch_size=64, prompt=prompt, convert_to_numpy=True)
            self.seconds += time.perf_counter() - start
            self.table.update(dict(zip([(prompt, text) for text in missing], vectors, strict=True)))
        out = np.stack([self.table[(prompt, text)] for text in texts])[:, :truncate_dim]
        if convert_to_tensor:
            return torch.from_numpy(out)
        return out if convert_to_numpy else list(torch.from_numpy(out))

    encode_query = encode  # all-MiniLM-L6-v2 has empty query/document prompts
    encode_document = encode


@dataclass(frozen=True)
class Task:
    """One benchmark: builds the (reference, sentencekit) evaluator pair and names the metrics to report."""

    name: str
    build: Callable[
        [Any], tuple[Any, Any]
    ]  # reference evaluation module -> (reference, sentencekit) evaluators
    metrics: tuple[str, ...]


def make_tasks(data: Path, limit: int | None) -> list[Task]:
    """The evaluator tasks, reading the data lazily (inside ``build``)."""

    def head(*columns: list) -> list[list]:
        return [column[:limit] for column in columns]

    def retrieval(folder: str) -> Callable[[Any], tuple[Any, Any]]:
        def build(ref: Any) -> tuple[Any, Any]:
            corpus, queries, relevant = readers.read_beir(data / folder / "beir", split="test")
            if limit is not None:
                queries = dict(list(queries.items())[:limit])
                wanted = {doc for qid in queries for doc in relevant[qid]}
                keep = wanted | set([doc for doc in corpus if doc not in wanted][: 2 * limit])
                corpus = {doc: text for doc, text in corpus.items() if doc in keep}
            options = {
                "mrr_at_k": [10],
                "ndcg_at_k": [10],
                "precision_recall_at_k": [10, 100],
                "map_at_k": [100],
            }
            return (
                ref.InformationRetrievalEvaluator(queries, corpus, relevant, **options),
                sk_evaluation.InformationRetrievalEvaluator(queries, corpus, relevant, **options),
            )

        return build

    def quora_pairs(ref: Any) -> tuple[Any, Any]:
        pairs = head(*readers.read_quora_duplicates(data / "quora_duplicates" / "test.tsv"))
        return ref.BinaryClassificationEvaluator(*pairs), sk_evaluation.BinaryClassificationEvaluator(*pairs)

    def quora_mining(ref: Any) -> tuple[Any, Any]:
        first, second, labels = head(*readers.read_quora_duplicates(data / "quora_duplicates" / "test.tsv"))
        ids: dict[str, str] = {}
        for text in first + second:
            ids.setdefault(text, str(len(ids)))
        sentences = {sentence_id: text for text, sentence_id in ids.items()}
        duplicates = [(ids[a], ids[b]) for a, b, y in zip(first, second, labels, strict=True) if y == 1]
        return (
            ref.ParaphraseMiningEvaluator(sentences, duplicates),
            sk_evaluation.ParaphraseMiningEvaluator(sentences, duplicates),
        )

    def snli(ref: Any) -> tuple[Any, Any]:
        triplets = head(*readers.read_triplet_tsv(data / "snli" / "snli_test_triplets.tsv"))
        return ref.TripletEvaluator(*triplets), sk_evaluation.TripletEvaluator(*triplets)

    def stsb(ref: Any) -> tuple[Any, Any]:
        pairs = head(*readers.read_sts_csv(data / "stsb" / "stsb-en-test.csv"))
        return ref.EmbeddingSimilarityEvaluator(*pairs), sk_evaluation.EmbeddingSimilarityEvaluator(*pairs)

    ir_metrics = ("cosine_ndcg@10", "cosine_mrr@10", "cosine_recall@100", "cosine_map@100")
    return [
        Task("SciFact test", retrieval("scifact"), ir_metrics),
        Task("Cranfield", retrieval("cranfield"), ir_metrics),
        Task("Quora duplicates test: pairs", quora_pairs, ("cosine_accuracy", "cosine_f1", "cosine_ap")),
        Task(
            "Quora duplicates test: mining", quora_mining, ("average_precision", "f1", "precision", "recall")
        ),
        Task("SNLI test triplets", snli, ("cosine_accuracy",)),
        Task("STSb test", stsb, ("spearman_cosine", "pearson_cosine")),
    ]


def clustering_rows(
    data: Path, limit: int | None, ref_table: EmbeddingTable, sk_table: EmbeddingTable | None
) -> list[dict]:
    """V-measure of community detection and k-means on BANKING77 test against its intent labels."""
    from sentence_transformers import util as st_util
    from sklearn.cluster import KMeans
    from sklearn.metrics import v_measure_score

    from sentencekit.search import community_detection

    texts, labels = readers.read_labeled_texts_csv(data / "banking77" / "test.csv")
    if limit is not None:  # the file is sorted by intent: sample across intents, reproducibly
        keep = sorted(np.random.default_rng(0).permutation(len(texts))[:limit])
        texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
    threshold, min_size = 0.7, 5  # a threshold at which intents form clean groups; see the module docstring

    def communities_to_labels(communities: list[list[int]]) -> list[int]:
        assigned = np.arange(len(texts)) + len(communities)  # unassigned texts are singletons
        for cluster, members in enumerate(communities):
            assigned[members] = cluster
        return assigned.tolist()

    def kmeans(embeddings: np.ndarray) -> float:
        unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
        found = KMeans(n_clusters=len(set(labels)), n_init=3, random_state=0).fit_predict(unit)
        return v_measure_score(labels, found)

    def v_measure_of_communities(detect: Callable[..., list[list[int]]], embeddings: Any) -> float:
        return v_measure_score(labels, communities_to_labels(detect(embeddings, threshold, min_size)))

    task = "BANKING77 test clustering"
    detection = f"community_detection(threshold={threshold}, min_size={min_size}) V-measure"
    ref_embeddings = ref_table.encode(texts)
    rows = [
        {
            "task": task,
            "metric": detection,
            "reference": v_measure_of_communities(
                st_util.community_detection, torch.from_numpy(ref_embeddings)
            ),
            "sk_evaluator": v_measure_of_communities(community_detection, ref_embeddings),
        },
        # the same scikit-learn k-means on the same vectors: only the sentencekit model can differ
        {"task": task, "metric": "KMeans V-measure", "reference": kmeans(ref_embeddings)},
    ]
    rows[1]["sk_evaluator"] = rows[1]["reference"]
    if sk_table is not None:
        sk_embeddings = sk_table.encode(texts)
        rows[0]["sentencekit"] = v_measure_of_communities(community_detection, sk_embeddings)
        rows[1]["sentencekit"] = kmeans(sk_embeddings)
    return rows


def _wanted(task_name: str, patterns: list[str] | None) -> bool:
    """Whether ``--tasks`` (case-insensitive substrings of task names; none: all) selects this task."""
    return not patterns or any(pattern.lower() in task_name.lower() for pattern in patterns)


def run(args: argparse.Namespace) -> dict:
    import sentence_transformers
    from sentence_transformers.sentence_transformer import evaluation as ref

    started = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    model_path = str(resolve_model_path(args.model))
    ref_table = EmbeddingTable(sentence_transformers.SentenceTransformer(model_path, device=args.device))
    sk_table = None
    if not args.reference_model_only:
        from sentencekit import SentenceTransformer

        sk_table = EmbeddingTable(SentenceTransformer(model_path, device=args.device))

    rows: list[dict] = []
    tasks = [task for task in make_tasks(args.data, args.limit) if _wanted(task.name, args.tasks)]
    for task in tasks:
        task_start = time.perf_counter()
        reference_evaluator, sk_evaluator = task.build(ref)
        expected = reference_evaluator(ref_table)
        got = sk_evaluator(ref_table)
        whole = sk_evaluator(sk_table) if sk_table is not None else {}
        for metric in task.metrics:
            row = {
                "task": task.name,
                "metric": metric,
                "reference": expected[metric],
                "sk_evaluator": got[metric],
            }
            if metric in whole:
                row["sentencekit"] = whole[metric]
            rows.append(row)
        print(f"{task.name}: {time.perf_counter() - task_start:.1f} s", file=sys.stderr)
    if _wanted("BANKING77 test clustering", args.tasks):
        rows += clustering_rows(args.data, args.limit, ref_table, sk_table)

    for row in rows:
        row["diff_evaluator"] = row["sk_evaluator"] - row["reference"]
        if "sentencekit" in row:
            row["diff_model"] = row["sentencekit"] - row["reference"]
    return {
        "model": args.model,
        "limit": args.limit,
        "device": args.device,
        "machine": f"{platform.machine()} python {platform.python_version()} torch {torch.__version__}",
        "sentence_transformers": sentence_transformers.__version__,
        "encode_seconds": {
            "sentence_transformers": round(ref_table.seconds, 2),
            "sentencekit": round(sk_table.seconds, 2) if sk_table else None,
        },
        "seconds": round(time.perf_counter() - started, 1),
        "max_abs_diff_evaluator": max(abs(row["diff_evaluator"]) for row in rows),
        "max_abs_diff_model": max(
            (abs(row["diff_model"]) for row in rows if "diff_model" in row), default=None
        ),
        "rows": rows,
    }


def markdown(report: dict) -> str:
    lines = [
        f"# Evaluation parity: {report['model']}",
        "",
        f"limit: {report['limit'] or 'none (full test sets)'}; "
        f"sentence-transformers {report['sentence_transformers']}; {report['machine']}; "
        f"{report['seconds']} s",
        "",
        "| task | metric | reference | sk evaluator | Δ evaluator | sentencekit | Δ stack |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in report["rows"]:
        whole = f"{row['sentencekit']:.4f}" if "sentencekit" in row else "-"
        diff = f"{row['diff_model']:+.1e}" if "diff_model" in row else "-"
        lines.append(
            f"| {row['task']} | {row['metric']} | {row['reference']:.4f} | {row['sk_evaluator']:.4f} "
            f"| {row['diff_evaluator']:+.1e} | {whole} | {diff} |"
        )
    stack = report["max_abs_diff_model"]
    lines += [
        "",
        f"Largest |Δ| evaluator: {report['max_abs_diff_evaluator']:.1e}; "
        f"largest |Δ| whole stack: {'-' if stack is None else format(stack, '.1e')}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model folder, loaded by both libraries")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared benchmark data folder")
    parser.add_argument(
        "--tasks", nargs="+", help="run only tasks whose name contains one of these (e.g. 'quora' 'mining')"
    )
    parser.add_argument("--limit", type=int, help="first N rows/queries per task (quick check)")
    parser.add_argument("--device", default="cpu", help="torch device for both models (default: cpu)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (1 is fastest on a busy CPU)")
    parser.add_argument("--reference-model-only", action="store_true", help="skip the sentencekit model")
    parser.add_argument("--json", type=Path, help="write the report as JSON")
    parser.add_argument("--markdown", type=Path, help="write the table as markdown")
    args = parser.parse_args()
    report = run(args)
    table = markdown(report)
    print(table)
    for path, text in ((args.json, json.dumps(report, indent=2) + "\n"), (args.markdown, table)):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
