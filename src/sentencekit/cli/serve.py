"""``sentencekit serve``: an HTTP server for embeddings (OpenAI-compatible), reranking, similarity and search.

Examples::

    sentencekit serve all-MiniLM-L6-v2                              # http://127.0.0.1:8000
    sentencekit serve all-MiniLM-L6-v2 --index docs.txt             # plus /v1/search and the page at /
    sentencekit serve all-MiniLM-L6-v2 --reranker cross-encoder/ms-marco-MiniLM-L6-v2 --api-key KEY
    sentencekit serve ./my-model --port 9000 --max-batch-tokens 8192 --max-wait-ms 2 --max-queue 64

Endpoints: POST /v1/embeddings, /v1/rerank, /v1/similarity, /v1/search; GET /v1/models, /health, /metrics,
and a search page at /. Concurrent requests are batched together (up to --max-batch-tokens tokens, waiting
at most --max-wait-ms for more); a full queue answers 429. --api-key (or $SENTENCEKIT_API_KEY) makes /v1/
paths need "Authorization: Bearer KEY". Ctrl-C (SIGINT) or SIGTERM finishes in-flight requests, then stops.
Needs: pip install 'sentencekit[server]'.
"""

from __future__ import annotations

import argparse
import logging
import os

from sentencekit.cli.main import plain_help
from sentencekit.cli.options import add_fast_option, model_backend, positive_int

__all__ = ["add_parser"]

logger = logging.getLogger(__name__)

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``serve`` to the ``sentencekit`` parser."""
    parser = subparsers.add_parser(
        "serve",
        help="serve embeddings, reranking and search over HTTP (OpenAI-compatible)",
        description=plain_help(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "model", help="embedding model: local folder, Hub id, or name such as all-MiniLM-L6-v2"
    )
    parser.add_argument("--reranker", help="cross-encoder for /v1/rerank")
    parser.add_argument(
        "--index", help="for /v1/search: an index folder (sentencekit index build), or a .txt/.jsonl corpus"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000)")
    parser.add_argument("--api-key", help="require this Bearer key on /v1/ (default: $SENTENCEKIT_API_KEY)")
    parser.add_argument("--served-model-name", help="name clients pass as `model` (default: MODEL)")
    parser.add_argument(
        "--max-batch-tokens",
        type=positive_int,
        default=16384,
        help="tokens per batching step (default: 16384)",
    )
    parser.add_argument(
        "--max-wait-ms", type=float, default=5.0, help="wait for more requests before a step (default: 5)"
    )
    parser.add_argument(
        "--max-queue", type=positive_int, default=256, help="waiting requests before 429 (default: 256)"
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=64, help="rows per forward pass (default: 64)"
    )
    parser.add_argument(
        "--max-inputs", type=positive_int, default=2048, help="inputs per request (default: 2048)"
    )
    parser.add_argument("--device", help="torch device, e.g. cpu or cuda (default: best available)")
    add_fast_option(parser)
    parser.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's choice)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Load the models and serve until interrupted."""
    from sentencekit.server import ServerConfig, create_app, serve
    from sentencekit.server.run import bind

    api_key = args.api_key or os.environ.get("SENTENCEKIT_API_KEY") or None
    config = ServerConfig(
        max_batch_tokens=args.max_batch_tokens,
        max_wait_ms=args.max_wait_ms,
        max_queue=args.max_queue,
        batch_size=args.batch_size,
        max_inputs=args.max_inputs,
        api_key=api_key,
        model_name=args.served_model_name or args.model,
        reranker_name=args.reranker,
    )
    if args.host not in _LOOPBACK and api_key is None:
        logger.warning("Listening on %s without --api-key: anyone who can reach it can use it.", args.host)
    sock = bind(args.host, args.port)  # before loading models: a busy port fails in a second

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)

    from sentencekit import SentenceTransformer

    model = SentenceTransformer(args.model, device=args.device, backend=model_backend(args))
    logger.info("Embedding model %s runs %s", args.model, model.inference_path)
    reranker = None
    if args.reranker is not None:
        from sentencekit.cross_encoder import CrossEncoder

        reranker = CrossEncoder(args.reranker, device=args.device, backend=model_backend(args))
        logger.info("Reranker %s runs %s", args.reranker, reranker.inference_path)
    app = create_app(model, reranker=reranker, index=args.index, config=config)
    level = "error" if args.quiet else {0: "warning", 1: "info"}.get(args.verbose, "debug")
    host, port = sock.getsockname()[:2]
    print(f"sentencekit: serving {config.model_name} on http://{host}:{port} (Ctrl-C stops)", flush=True)
    serve(app, sock=sock, log_level=level)
    return 0
