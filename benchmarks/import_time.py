"""Time `import sentencekit` against `import sentence_transformers`, each in fresh processes.

Usage: python benchmarks/import_time.py [--repeat 5] [--json results/import_time.json]
Reports the median wall time of `python -c "import X"` minus that of `python -c "pass"`
(the interpreter start-up).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _time(code: str, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    base = _time("pass", args.repeat)
    results = {
        "machine": f"{platform.machine()} {platform.processor()} python {platform.python_version()}",
        "interpreter_start_s": round(base, 4),
    }
    for module in ("sentencekit", "sentence_transformers"):
        try:
            results[module] = round(_time(f"import {module}", args.repeat) - base, 4)
        except subprocess.CalledProcessError:
            results[module] = None
    if results.get("sentencekit") and results.get("sentence_transformers"):
        results["ratio"] = round(results["sentence_transformers"] / results["sentencekit"], 1)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
