"""The ``sentencekit`` command, run through its real entry point in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sentencekit import packaged
from sentencekit.registry import packaged_source


@pytest.fixture
def cli_env(tmp_path):
    """Environment for the command: empty sentencekit and Hugging Face caches, no Hub."""
    env = {k: v for k, v in os.environ.items() if k not in ("SENTENCE_TRANSFORMERS_HOME", "HF_HOME")}
    env.update(
        SENTENCEKIT_HOME=str(tmp_path / "home"),
        HF_HUB_CACHE=str(tmp_path / "hf"),
        HF_HUB_OFFLINE="1",
    )
    return env


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sentencekit.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_help_lists_the_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    assert "models" in result.stdout
    result = run_cli("models", "--help")
    assert result.returncode == 0
    for command in ("list", "fetch", "path", "verify"):
        assert command in result.stdout


@pytest.mark.parametrize("command", ["models", "eval", "cache", "index"])
def test_command_help_is_plain_text(command):
    result = run_cli(command, "--help")
    assert result.returncode == 0
    assert "Examples:\n" in result.stdout
    assert "``" not in result.stdout and "::" not in result.stdout


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys\n"
        "from sentencekit.cli.main import main\n"
        "for argv in (['--help'], ['models', '--help'], ['models', 'path', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'huggingface_hub', 'numpy') if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in result.stderr


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("sentencekit ")


def test_no_command_prints_usage_and_fails():
    result = run_cli()
    assert result.returncode == 2
    assert "usage: sentencekit" in result.stderr


def test_models_list_shows_packaged_models_and_families(cli_env):
    result = run_cli("models", "list", "--json", env=cli_env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    packaged_models = {m["name"]: m for m in data["packaged"]}
    assert set(packaged_models) == {"all-MiniLM-L6-v2", "all-mpnet-base-v2"}
    assert packaged_models["all-MiniLM-L6-v2"]["cached"] is False
    families = {f["name"]: f for f in data["families"]}
    assert families["e5"]["prompts"] == {"query": "query: ", "document": "passage: "}
    table = run_cli("models", "list", env=cli_env)
    assert table.returncode == 0
    assert "all-MiniLM-L6-v2" in table.stdout and "bge-en-v1.5" in table.stdout


def _fake_cached_minilm(home: Path) -> Path:
    """A small folder with a valid manifest where the packaged cache keeps all-MiniLM-L6-v2."""
    folder = home / "models" / "all-MiniLM-L6-v2"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "bert"}')
    packaged._write_manifest(folder, packaged_source("all-MiniLM-L6-v2"))
    return folder


def test_models_path_prints_the_folder(cli_env, tmp_path):
    folder = _fake_cached_minilm(Path(cli_env["SENTENCEKIT_HOME"]))
    result = run_cli("models", "path", "all-MiniLM-L6-v2", "--local-files-only", env=cli_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(folder)
    local = tmp_path / "my-model"
    local.mkdir()
    result = run_cli("models", "path", str(local), env=cli_env)
    assert result.stdout.strip() == str(local)
    listed = json.loads(run_cli("models", "list", "--json", env=cli_env).stdout)
    assert {m["name"]: m["path"] for m in listed["packaged"]}["all-MiniLM-L6-v2"] == str(folder)


def test_models_verify(cli_env):
    folder = _fake_cached_minilm(Path(cli_env["SENTENCEKIT_HOME"]))
    assert run_cli("models", "verify", "all-MiniLM-L6-v2", "--full", env=cli_env).returncode == 0
    (folder / "config.json").write_text('{"model_type": "BERT"}')  # same size, other bytes
    result = run_cli("models", "verify", "all-MiniLM-L6-v2", "--full", env=cli_env)
    assert result.returncode == 2
    assert "config.json has changed" in result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("models", "path", "/no/such/model/folder"), "does not exist"),
        (("models", "path", "acme/not-a-model"), "'acme/not-a-model' was not found"),
        (("models", "fetch", "acme/not-packaged"), "is not a packaged model"),
        (("models", "verify", "all-MiniLM-L6-v2"), "is not in the model cache"),
    ],
)
def test_user_errors_exit_2_with_a_message_and_no_traceback(cli_env, args, expected):
    result = run_cli(*args, env=cli_env)
    assert result.returncode == 2
    assert result.stderr.startswith("sentencekit: error: ")
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_bad_arguments_exit_2():
    result = run_cli("models", "fetch")
    assert result.returncode == 2
    assert "the following arguments are required: name" in result.stderr
