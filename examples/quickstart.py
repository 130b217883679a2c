"""The main job in a few lines: embed a small corpus, then answer queries with ranked, scored results.

Run it with ``make demo`` (sets everything up first) or ``python examples/quickstart.py [MODEL]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from sentencekit import SentenceTransformer

QUERIES = [
    "Someone is playing a musical instrument.",
    "What happens to share prices when rates go up?",
    "How do I make bread?",
    "news about planets and space travel",
]


def main(model_name: str = "all-MiniLM-L6-v2") -> None:
    """Load ``model_name``, embed the bundled corpus and print the top 3 documents for each query."""
    corpus = Path(__file__).with_name("corpus.txt").read_text(encoding="utf-8").splitlines()
    start = time.perf_counter()
    model = SentenceTransformer(model_name)
    print(
        f"Loaded {model_name} in {time.perf_counter() - start:.1f}s "
        f"({model.get_sentence_embedding_dimension()} dimensions, device {model.device})"
    )
    start = time.perf_counter()
    doc_emb = model.encode_document(corpus, normalize_embeddings=True)
    query_emb = model.encode_query(QUERIES, normalize_embeddings=True)
    print(
        f"Encoded {len(corpus)} documents and {len(QUERIES)} queries in {time.perf_counter() - start:.2f}s\n"
    )
    scores = model.similarity(query_emb, doc_emb)
    for query, row in zip(QUERIES, scores, strict=True):
        print(f"Query: {query}")
        top = row.topk(3)
        for rank, (score, idx) in enumerate(
            zip(top.values.tolist(), top.indices.tolist(), strict=True), start=1
        ):
            print(f"  {rank}. {score:.4f}  {corpus[idx]}")
        print()


if __name__ == "__main__":
    main(*sys.argv[1:2])
