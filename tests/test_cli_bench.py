"""``sentencekit bench`` and ``sentencekit.benchmarking``, with the tiny random model and a few texts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from sentencekit.benchmarking import metrics
from sentencekit.benchmarking.paths import PATH_NAMES, select_paths
from sentencekit.benchmarking.rss import RssSampler, current_rss
from sentencekit.cli.bench import load_text_sets
from sentencekit.cli.main import main
from sentencekit.errors import InvalidInputError, MissingDependencyError

SHORT = ["a man is eating food", "the cat plays guitar", "", "red car on the street", "hello world"]
LONG = [
    "the quick brown fox jumps over the lazy dog and the dog walks in the street",
    "a woman is playing guitar and a child is eating pasta with a small blue model",
]
STSB_ROWS = [
    ("a man is eating food", "the cat plays guitar", 0.5),
    ("red car on the street", "hello world", 1.0),
    ("a man is eating food", "red car on the street", 2.5),
    ("the cat plays guitar", "hello world", 4.0),
]
PATHS = "sentencekit-default,sentencekit-torch-bf16"  # plus the baseline, sentencekit torch fp32
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "sentencekit.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.fixture
def inputs(tmp_path):
    (tmp_path / "short.txt").write_text("\n".join(SHORT) + "\n", encoding="utf-8")
    (tmp_path / "long.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in LONG))
    (tmp_path / "stsb.csv").write_text("".join(f"{a},{b},{s}\n" for a, b, s in STSB_ROWS))
    return tmp_path


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory, tiny_hf_folder, one_torch_thread):
    """One ``sentencekit bench`` run through the real entry point, on a copy of the tiny model."""
    root = tmp_path_factory.mktemp("bench")
    model = shutil.copytree(tiny_hf_folder, root / "model")  # the default path may write its ONNX file here
    (root / "long.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in LONG))
    (root / "stsb.csv").write_text("".join(f"{a},{b},{s}\n" for a, b, s in STSB_ROWS))
    out_json, out_png = root / "out" / "bench.json", root / "out" / "bench.png"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SENTENCEKIT_HOME", str(root / "home"))
        patch.setattr("sentencekit.benchmarking.runner.reference_available", lambda: False)
        code = main(
            [
                "-q",
                "bench",
                str(model),
                "--paths",
                PATHS,
                "--repeats",
                "1",
                "--stsb",
                str(root / "stsb.csv"),
                "--long",
                str(root / "long.jsonl"),
                "--json",
                str(out_json),
                "--png",
                str(out_png),
            ]
        )
    assert code == 0
    return json.loads(out_json.read_text()), out_png


def test_bench_report_has_every_path_with_sane_numbers(bench_run):
    report, _ = bench_run
    assert report["baseline"] == "sentencekit torch fp32"
    assert report["reference_installed"] is False
    names = ["sentencekit default", "sentencekit torch fp32", "sentencekit torch bf16"]
    assert list(report["paths"]) == names
    assert report["rss_baseline_mib"] > 0
    assert list(report["datasets"]) == ["short (stsb.csv)", "long (long.jsonl)"]
    short = report["datasets"]["short (stsb.csv)"]
    assert short["texts"] == 4 and short["tokens"] > 4
    for label, data in report["datasets"].items():
        paths = data["paths"]
        assert list(paths) == names, label
        assert paths["sentencekit torch fp32"]["ratio_vs_baseline"] == 1.0
        assert paths["sentencekit torch fp32"]["max_abs_diff_vs_baseline"] == 0.0
        for name in ("sentencekit default", "sentencekit torch fp32"):  # the exact paths
            assert paths[name]["min_cosine_vs_baseline"] >= 0.9999, (label, name)
        assert paths["sentencekit torch bf16"]["min_cosine_vs_baseline"] > 0.9
        for name, result in paths.items():
            assert result["tokens_per_s"] > 0 and result["sentences_per_s"] > 0, name
            assert result["ratio_vs_baseline"] > 0
            assert result["peak_rss_mib"] > 0
            assert result["peak_rss_mib"] >= report["rss_baseline_mib"] + result["peak_rss_growth_mib"] - 0.2
    for result in short["paths"].values():
        assert -1.0 <= result["stsb_spearman"] <= 1.0
    assert "stsb_spearman" not in report["datasets"]["long (long.jsonl)"]["paths"]["sentencekit default"]


def test_bench_reports_the_fp32_ceiling_of_each_set(bench_run):
    report, _ = bench_run
    ceiling = report["ceiling"]
    assert ceiling["fp32_matmul_gflops"] > 0 and ceiling["bf16_matmul_gflops"] > 0
    assert ceiling["flops"]["attention_counted"] is True
    for label, data in report["datasets"].items():
        baseline = data["paths"]["sentencekit torch fp32"]["tokens_per_s"]
        bound = data["fp32_ceiling_tokens_per_s"]
        assert data["fp32_ceiling_vs_baseline"] == pytest.approx(bound / baseline, abs=0.01), label
        # each token costs at least its linear layers, and attention adds to it
        assert data["flops_per_token"] > ceiling["flops"]["per_token"], label
        flops = data["flops_per_token"] * data["tokens"]
        assert bound == pytest.approx(
            data["tokens"] / (flops / (ceiling["fp32_matmul_gflops"] * 1e9)), rel=0.01
        )


def test_flop_count_matches_the_tiny_models_layers(tiny_hf_folder):
    import torch

    from sentencekit.benchmarking.ceiling import count_flops
    from sentencekit.modules import Transformer

    transformer = Transformer.load(str(tiny_hf_folder))
    encoder, config = transformer.auto_model.encoder, transformer.auto_model.config
    before = config._attn_implementation
    model = count_flops(transformer)
    linear = sum(
        2 * m.in_features * m.out_features for m in encoder.modules() if isinstance(m, torch.nn.Linear)
    )
    assert model.linear == pytest.approx(linear)
    # attention's two products, query x key and weights x value: hidden_size multiply-adds each per token pair
    assert model.pairs == pytest.approx(4 * config.hidden_size * config.num_hidden_layers)
    assert model.attention_counted
    assert model.flops([3, 5]) == pytest.approx(2 * model.constant + 8 * model.linear + 34 * model.pairs)
    assert config._attn_implementation == before  # eager only for the count


def test_bench_writes_a_png(bench_run):
    _, png = bench_run
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_bench_table_says_what_the_ratios_are_against(bench_run):
    from sentencekit.benchmarking import format_tables

    report, _ = bench_run
    table = format_tables(report)
    assert "sentence-transformers is not installed" in table
    assert "against sentencekit torch fp32 (NOT the reference)" in table
    assert "peak MiB" in table
    assert "no fp32 path can pass" in table and "GFLOP/s" in table


BAD = [
    (["--short", "{tmp}/missing.txt"], "No such file: {tmp}/missing.txt"),
    (["--long", "{tmp}/long.jsonl", "--column", "body"], "long.jsonl:1 has no field 'body'"),
    (["--short", "{tmp}/short.doc"], "use one of .txt, .jsonl, .csv, .tsv, .parquet"),
    (["--stsb", "{tmp}/bad_stsb.csv"], "bad_stsb.csv:2: score 'y' is not a number"),
    (["--short", "{tmp}/blank.txt"], "has no texts"),
    (["--short", "{tmp}/short.txt", "--paths", "sentencekit-turbo"], "Unknown path 'sentencekit-turbo'"),
]


@pytest.mark.parametrize(("argv", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_inputs_are_one_line_and_exit_2(inputs, argv, message):
    (inputs / "short.doc").write_text("a\n")
    (inputs / "bad_stsb.csv").write_text("a,b,1.0\nc,d,y\n")
    (inputs / "blank.txt").write_text("\n  \n")
    result = run_cli("bench", "no-model-needed", *(a.format(tmp=inputs) for a in argv))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sentencekit: error: ")
    assert message.format(tmp=inputs) in lines[0]


def test_help_is_plain_and_imports_no_torch():
    code = (
        "import sys\nfrom sentencekit.cli.main import main\n"
        "for argv in (['--help'], ['bench', '--help']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "print('HEAVY', [m for m in ('torch', 'numpy', 'matplotlib') if m in sys.modules], file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in result.stderr
    assert "bench" in result.stdout and "Examples:\n" in result.stdout and "``" not in result.stdout


# ---------------------------------------------------------------------------------------- the pieces


def test_load_text_sets_reads_files_and_skips_blank_texts(inputs):
    sets, pairs = load_text_sets(
        short=inputs / "short.txt", long=inputs / "long.jsonl", stsb=inputs / "stsb.csv", n_long=1
    )
    assert [s.label for s in sets] == ["short (short.txt)", "long (long.jsonl)"]
    assert sets[0].texts == [t for t in SHORT if t]
    assert sets[1].texts == LONG[:1]
    assert pairs is not None and pairs.scores == [r[2] for r in STSB_ROWS]


def test_load_text_sets_without_inputs_or_shared_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ../shared/data from here
    with pytest.raises(InvalidInputError, match="pass --short FILE, --long FILE or --stsb FILE"):
        load_text_sets(short=None, long=None, stsb=None)


def test_select_paths_baseline_and_errors():
    specs, baseline = select_paths(None, reference_installed=False)
    assert baseline == "sentencekit torch fp32"
    named_only = {"sentencekit openvino", "sentencekit openvino bf16", "sentencekit openvino int8"}
    assert [s.name for s in specs] == [
        n for n in PATH_NAMES if not n.startswith("reference") and n not in named_only
    ]
    specs, baseline = select_paths(None, reference_installed=True)
    assert baseline == "reference fp32" and [s.name for s in specs] == [
        n for n in PATH_NAMES if n not in named_only
    ]
    specs, _ = select_paths(["sentencekit-openvino-bf16"], reference_installed=True)
    assert [s.name for s in specs] == ["reference fp32", "sentencekit openvino bf16"]
    assert specs[1].backend == "openvino" and specs[1].ov_bf16
    specs, baseline = select_paths(["Sentencekit_Default"], reference_installed=True)
    assert [s.name for s in specs] == ["reference fp32", "sentencekit default"]
    specs, baseline = select_paths(["sentencekit-default"], reference_installed=True, use_reference=False)
    assert baseline == "sentencekit torch fp32"
    assert [s.name for s in specs] == ["sentencekit default", "sentencekit torch fp32"]
    with pytest.raises(MissingDependencyError, match="pip install sentence-transformers"):
        select_paths(["reference-bf16"], reference_installed=False)
    with pytest.raises(InvalidInputError, match="--no-reference leaves out"):
        select_paths(["reference-bf16"], reference_installed=True, use_reference=False)
    with pytest.raises(InvalidInputError, match="choose from reference fp32"):
        select_paths(["turbo"], reference_installed=True)


def test_int8_path_needs_the_onnx_extra_and_batch_labels(monkeypatch):
    from sentencekit.benchmarking import paths

    monkeypatch.setattr(paths, "_onnx_installed", lambda: False)
    specs, _ = select_paths(None, reference_installed=True)
    assert "sentencekit onnx int8" not in [s.name for s in specs]
    assert "reference bf16 b128" in [s.name for s in specs]
    by_name = {spec.name: spec for spec in paths._SPECS}
    assert paths.batch_label(by_name["reference fp32"], None) == "32"  # the reference's own default
    assert paths.batch_label(by_name["sentencekit torch bf16"], None) == "path plan"
    assert paths.batch_label(by_name["sentencekit torch bf16"], 16) == "16"
    assert paths.batch_label(by_name["reference bf16 b128"], 16) == "128"  # its own count wins


def test_spearman_matches_scipy_with_ties():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, size=200).astype(float)  # many ties
    y = x + rng.normal(size=200)
    assert metrics.spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)


def test_agreement_metrics():
    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    b = np.array([[1.0, 0.0], [1.0, 1.0]])
    assert metrics.max_abs_diff(a, b) == 1.0
    assert metrics.min_cosine(a, b) == pytest.approx(np.sqrt(0.5))
    assert metrics.min_cosine(a, a) == pytest.approx(1.0)


@pytest.mark.skipif(current_rss() is None, reason="needs /proc/self/statm")
def test_rss_sampler_sees_an_allocation():
    before = current_rss()
    with RssSampler(interval=0.001) as sampler:
        block = np.ones(64 * 1024 * 1024 // 8)  # 64 MiB, touched
        del block
    assert sampler.peak is not None and sampler.peak >= before + 32 * 1024 * 1024


def test_chart_without_matplotlib_names_the_install(monkeypatch, tmp_path):
    from sentencekit.benchmarking import report

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(MissingDependencyError, match="pip install matplotlib"):
        report.write_chart({"datasets": {}}, tmp_path / "x.png")


def test_runner_with_the_reference_as_baseline(monkeypatch, tiny_hf_folder, inputs):
    """Stand-ins for the reference paths: the baseline, the ratios, Spearman on a separate short set."""
    from sentencekit.benchmarking import BenchConfig, TextSet, format_tables, run_benchmark, runner
    from sentencekit.readers import read_sts_csv

    def fake_load(spec, folder, batch_size):
        noise = 0.0 if spec.name == "reference fp32" else 1e-3

        def encode(texts):
            rows = [np.random.default_rng(len(t)).normal(size=8) for t in texts]
            return np.array(rows) + noise

        return encode, "stand-in"

    monkeypatch.setattr(runner, "reference_available", lambda: True)
    monkeypatch.setattr(runner, "load_path", fake_load)
    sets = [TextSet("short", "mine", ["a dog", "hello world", "the cat"])]
    config = BenchConfig(paths=("reference-bf16", "sentencekit-torch-bf16"), repeats=2)
    report = run_benchmark(
        str(tiny_hf_folder), sets, config, stsb=read_sts_csv(inputs / "stsb.csv"), log=lambda _: None
    )
    assert report["baseline"] == "reference fp32"
    paths = report["datasets"]["short (mine)"]["paths"]
    assert list(paths) == ["reference fp32", "reference bf16", "sentencekit torch bf16"]
    assert paths["reference fp32"]["ratio_vs_baseline"] == 1.0
    assert paths["reference bf16"]["max_abs_diff_vs_baseline"] == pytest.approx(1e-3)
    assert all("stsb_spearman" in result for result in paths.values())  # encoded apart: not the short set
    assert "against the reference (sentence-transformers" in format_tables(report)


def test_a_model_the_flop_counter_cannot_run_gets_no_bound(monkeypatch, tiny_hf_folder, caplog):
    from sentencekit.benchmarking import BenchConfig, TextSet, format_tables, run_benchmark, runner

    def unsupported(transformer):
        raise RuntimeError("this architecture cannot be counted")

    monkeypatch.setattr(runner, "measure_ceiling", unsupported)
    monkeypatch.setattr(runner, "reference_available", lambda: False)
    sets = [TextSet("short", "mine", ["a dog", "hello world"])]
    config = BenchConfig(paths=("sentencekit-torch-fp32",), repeats=1)
    report = run_benchmark(str(tiny_hf_folder), sets, config, log=lambda _: None)
    assert report["ceiling"] is None
    assert "fp32_ceiling_tokens_per_s" not in report["datasets"]["short (mine)"]
    assert "no fp32 path" not in format_tables(report)
    assert "cannot be counted" in caplog.text
