"""Which prompt ``encode_query`` / ``encode_document`` use: the model's config first, then the registry."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sentencekit.registry import ModelFamily

__all__ = ["PromptResolver"]

logger = logging.getLogger(__name__)


class PromptResolver:
    """Finds the query/document prompt for a model and warns once when a model that needs prompts has none."""

    def __init__(self, model_id: str | None) -> None:
        self.model_id = model_id
        self._warned = False

    def _family(self) -> ModelFamily | None:
        from sentencekit.registry import find_family

        return find_family(self.model_id) if self.model_id else None

    def prompt_for(self, role: str, configured: dict[str, str]) -> str:
        """Prompt text for ``role`` (``"query"`` or ``"document"``); ``""`` when the model uses none."""
        if role in configured:
            return configured[role]
        family = self._family()
        if family is None:
            return ""
        return (family.query_prompt if role == "query" else family.document_prompt) or ""

    def warn_if_prompt_needed(self, configured: dict[str, str]) -> None:
        """Warn once when a model known to need retrieval prompts is encoded without any."""
        if self._warned or any(configured.values()):
            return
        family = self._family()
        if family is not None and family.needs_prompts:
            self._warned = True
            logger.warning(
                "%s expects prompts for retrieval (query: %r); encode() got none. Use encode_query() / "
                "encode_document(), or pass prompt=..., so queries and documents get the prompts it was "
                "trained with.",
                self.model_id,
                family.query_prompt,
            )
