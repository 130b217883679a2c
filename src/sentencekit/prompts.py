"""Which prompt ``encode_query`` / ``encode_document`` use: the model's config first, then the registry."""

from __future__ import annotations

import logging

__all__ = ["PromptResolver"]

logger = logging.getLogger(__name__)


class PromptResolver:
    """Finds the query/document prompt for a model and warns once when a model that needs prompts has none."""

    def __init__(self, model_id: str | None) -> None:
        self.model_id = model_id
        self._warned = False

    def prompt_for(self, role: str, configured: dict[str, str]) -> str | None:
        """Prompt for ``role`` (``"query"`` or ``"document"``), or ``None`` when the model uses none."""
        if configured.get(role):
            return configured[role]
        from sentencekit.registry import find_family

        family = find_family(self.model_id) if self.model_id else None
        if family is None:
            return None
        prompt = family.query_prompt if role == "query" else family.document_prompt
        if prompt:
            return prompt
        if family.needs_prompts and not any(configured.values()) and not self._warned:
            self._warned = True
            logger.warning(
                "%s is meant to be used with prompts for retrieval but none is configured for %r; "
                "pass prompt=... to encode for best results.",
                self.model_id,
                role,
            )
        return None
