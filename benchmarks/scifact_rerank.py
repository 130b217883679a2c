"""Retrieve-then-rerank on SciFact test: MiniLM top-k rescored by a cross-encoder, nDCG@10 before/after.

Usage:
    python benchmarks/scifact_rerank.py --cross-encoder results/minilm-stsb-cross-encoder \
        [--top-k 100] [--queries N] [--max-length N] [--output results/scifact_rerank.json]

The bi-encoder embeds the 5,183 abstracts (title + text) and the 300 test claims; each claim's top-k
abstracts by cosine similarity form the "before" ranking, and ``retrieve_and_rerank`` rescores the same
candidates with the cross-encoder for the "after" ranking. Both rankings go through the same
``InformationRetrievalEvaluator.compute_metrics`` (nDCG@10, MRR@10, MAP@100, recall@10). Embeddings are cached
under ``--cache-dir`` (keyed by the sorted ids, recomputed when they do not match).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "data" / "scifact" / "beir"


def embeddings(model: Any, corpus: dict[str, str], queries: dict[str, str], cache: Path) -> tuple[Any, Any]:
    """Corpus and query embeddings in sorted-id order, from ``cache`` when it holds the same ids."""
    corpus_ids, query_ids = sorted(corpus), sorted(queries)
    ids_file = cache / "ids.json"
    if ids_file.exists() and json.loads(ids_file.read_text()) == [corpus_ids, query_ids]:
        return np.load(cache / "corpus.npy"), np.load(cache / "queries.npy")
    corpus_emb = model.encode([corpus[i] for i in corpus_ids], batch_size=32, show_progress_bar=True)
    query_emb = model.encode([queries[i] for i in query_ids], batch_size=32)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(cache / "corpus.npy", corpus_emb)
    np.save(cache / "queries.npy", query_emb)
    ids_file.write_text(json.dumps([corpus_ids, query_ids]))
    return corpus_emb, query_emb


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cross-encoder", required=True)
    parser.add_argument("--bi-encoder", default="all-MiniLM-L6-v2")
    parser.add_argument("--top-k", type=int, default=100)
    parser.add_argument("--queries", type=int, help="the first N test queries only (a quick check)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, help="cross-encoder max_length (default: the model's own)")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "results" / "scifact_minilm")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    import torch

    from sentencekit import CrossEncoder, SentenceTransformer
    from sentencekit.cross_encoder.rerank import retrieve_and_rerank
    from sentencekit.evaluation import InformationRetrievalEvaluator
    from sentencekit.readers import read_beir

    corpus, queries, relevant = read_beir(SCIFACT, split="test")
    bi_encoder = SentenceTransformer(args.bi_encoder, device="cpu")
    corpus_emb, query_emb = embeddings(bi_encoder, corpus, queries, args.cache_dir)
    corpus_ids, query_ids = sorted(corpus), sorted(queries)
    if args.queries:
        query_ids, query_emb = query_ids[: args.queries], query_emb[: args.queries]
    evaluator = InformationRetrievalEvaluator(
        {q: queries[q] for q in query_ids},
        corpus,
        {q: relevant[q] for q in query_ids},
        mrr_at_k=(10,),
        ndcg_at_k=(10,),
        map_at_k=(100,),
        precision_recall_at_k=(10, 100),
    )
    # before: the bi-encoder's own top-k
    scores = torch.from_numpy(query_emb) @ torch.from_numpy(corpus_emb).T
    scores /= torch.linalg.norm(torch.from_numpy(query_emb), dim=1, keepdim=True)
    scores /= torch.linalg.norm(torch.from_numpy(corpus_emb), dim=1)
    values, columns = torch.topk(scores, args.top_k, dim=1)
    before = [
        [(float(v), corpus_ids[c]) for v, c in zip(row_values, row_columns, strict=True)]
        for row_values, row_columns in zip(values.tolist(), columns.tolist(), strict=True)
    ]
    # after: the same candidates rescored by the cross-encoder
    cross_encoder = CrossEncoder(args.cross_encoder, max_length=args.max_length, device="cpu")
    start = time.perf_counter()
    hits = retrieve_and_rerank(
        [queries[q] for q in query_ids],
        cross_encoder,
        [corpus[c] for c in corpus_ids],
        corpus_embeddings=corpus_emb,
        query_embeddings=query_emb,
        retrieve_top_k=args.top_k,
        batch_size=args.batch_size,
        show_progress_bar=True,
    )
    rerank_seconds = time.perf_counter() - start
    after = [[(hit["score"], corpus_ids[hit["corpus_id"]]) for hit in query_hits] for query_hits in hits]
    result = {
        "bi_encoder": args.bi_encoder,
        "cross_encoder": str(args.cross_encoder),
        "cross_encoder_scores": cross_encoder.score_description,
        "queries": len(query_ids),
        "top_k": args.top_k,
        "max_length": cross_encoder.max_length,
        "before": evaluator.compute_metrics(before),
        "after": evaluator.compute_metrics(after),
        "rerank_seconds": rerank_seconds,
        "pairs_per_second": len(query_ids) * args.top_k / rerank_seconds,
        "load_average": os.getloadavg(),
    }
    print(
        f"nDCG@10 before {result['before']['ndcg'][10]:.4f}  after {result['after']['ndcg'][10]:.4f}  "
        f"({len(query_ids)} queries, top {args.top_k}, rerank {rerank_seconds:.0f} s)"
    )
    if args.output:
        args.output.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
