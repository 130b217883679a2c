"""``push_to_hub``: upload a model (SentenceTransformer or CrossEncoder) to a Hugging Face Hub repository.

The model is saved to a temporary folder (or ``local_model_path`` is taken as it is) and uploaded in one
commit with ``huggingface_hub``: the repository is created when missing, the branch ``revision`` too, and
``create_pr=True`` opens a pull request instead of committing to the branch. A README.md already in the
repository is kept unless ``replace_model_card=True``. Any failure to reach or write to the Hub raises
:class:`~sentencekit.errors.HubError` saying why (offline mode, unreachable, not allowed) and what to do.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sentencekit.errors import HubError

__all__ = ["push_to_hub"]

logger = logging.getLogger(__name__)


def push_to_hub(
    self: Any,
    repo_id: str,
    token: str | None = None,
    private: bool | None = None,
    safe_serialization: bool = True,
    commit_message: str | None = None,
    local_model_path: str | None = None,
    exist_ok: bool = False,
    replace_model_card: bool = False,
    train_datasets: list[str] | None = None,
    revision: str | None = None,
    create_pr: bool = False,
) -> str:
    """Upload this model to the Hub repository ``repo_id`` (created if missing); return the commit's URL.

    Args:
        self: The SentenceTransformer or CrossEncoder (this function is their ``push_to_hub`` method).
        repo_id: ``"user/name"`` or ``"org/name"`` (a bare name goes under the token's user).
        token: A Hugging Face token with write access; ``None`` uses ``HF_TOKEN`` or the saved login.
        private: Create the repository as private (``None``: the Hub's default).
        safe_serialization: Accepted for the reference's signature; weights are always saved as safetensors.
        commit_message: Default: "Add new <class> model".
        local_model_path: Upload this folder instead of saving the model.
        exist_ok: Upload into an existing repository (else one that exists is an error).
        replace_model_card: Overwrite the repository's README.md with this model's card.
        train_datasets: Hub dataset ids to name in the card's metadata.
        revision: Branch to commit to (created if missing).
        create_pr: Open a pull request with the upload; return its URL.

    Raises:
        HubError: When the Hub cannot be reached, is in offline mode, or refuses the request.
    """
    from huggingface_hub import HfApi

    del safe_serialization
    api = HfApi(token=token)
    with _hub_errors(repo_id):
        repo_id = api.create_repo(repo_id, private=private, exist_ok=exist_ok or create_pr).repo_id
        if revision is not None:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        card = getattr(self, "model_card_data", None)
        if card is not None:
            card.model_id = card.model_id or repo_id
            card.train_datasets = card.train_datasets or [{"id": name} for name in train_datasets or []]
        message = commit_message or f"Add new {type(self).__name__} model"
        with tempfile.TemporaryDirectory() as staging:
            folder = Path(local_model_path) if local_model_path else Path(staging)
            if not local_model_path:
                self.save(str(folder))
            keep_card = not replace_model_card and api.file_exists(repo_id, "README.md", revision=revision)
            if keep_card:
                logger.info("Keeping the README.md of %s (replace_model_card=False).", repo_id)
            commit = api.upload_folder(
                repo_id=repo_id,
                folder_path=str(folder),
                commit_message=message,
                revision=revision,
                create_pr=create_pr,
                ignore_patterns=["README.md"] if keep_card else None,
            )
    url = commit.pr_url if create_pr else commit.commit_url
    logger.info("Uploaded %s to %s", type(self).__name__, url)
    return str(url)


@contextlib.contextmanager
def _hub_errors(repo_id: str) -> Iterator[None]:
    """Turn huggingface_hub's and the network's errors into a :class:`HubError` that says what to do."""
    try:
        yield
    except HubError:
        raise
    except Exception as exc:  # huggingface_hub and requests/httpx raise many unrelated types
        from sentencekit.hub import describe_hub_error

        why = describe_hub_error(exc, repo_id, None)
        raise HubError(
            f"Could not upload to the Hugging Face Hub repository {repo_id!r}: {why}. Check the network and "
            "that HF_HUB_OFFLINE is not set, and log in with a token that can write there (HF_TOKEN or "
            "`hf auth login`); or save() the model and upload the folder later."
        ) from exc
