"""Prompts of :class:`~sentencekit.SentenceTransformer`: ``encode_query``, ``encode_document``, lookups.

:class:`PromptMethods` picks the prompt text of an ``encode`` call and counts its tokens (once per prompt and
route), so that pooling can leave them out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from torch import nn

from sentencekit.modules import InputModule
from sentencekit.modules.router import routed_modules
from sentencekit.prompts import PromptResolver

__all__ = ["PromptMethods"]

logger = logging.getLogger("sentencekit.sentence_transformer")  # the facade's name, as before the move


class PromptMethods:
    """Prompt handling of :class:`~sentencekit.SentenceTransformer` (and the models built on it)."""

    prompts: dict[str, str]
    default_prompt_name: str | None
    _prompt_lengths: dict[tuple[str | None, str], int]
    _prompt_resolver: PromptResolver
    encode: Callable[..., Any]

    if TYPE_CHECKING:  # nn.Sequential's, in the model class

        def __iter__(self) -> Iterator[nn.Module]: ...

    def encode_query(self, sentences: str | list[str], **kwargs: Any) -> Any:
        """Encode search queries, with the model's query prompt (from its config or the model registry)."""
        return self._encode_role("query", sentences, kwargs)

    def encode_document(self, sentences: str | list[str], **kwargs: Any) -> Any:
        """Encode documents to search over, with the model's document prompt when it has one."""
        return self._encode_role("document", sentences, kwargs)

    def _encode_role(self, role: str, sentences: Any, kwargs: dict[str, Any]) -> Any:
        if "prompt" not in kwargs and "prompt_name" not in kwargs:
            kwargs["prompt"] = self._prompt_resolver.prompt_for(role, self.prompts)
        kwargs.setdefault("task", role)  # a Router's route for the role
        return self.encode(sentences, **kwargs)

    def _resolve_prompt(self, prompt: str | None, prompt_name: str | None) -> str | None:
        """The prompt text for this call; ``""`` means "explicitly none", ``None`` means "none given"."""
        if prompt is not None:
            if prompt_name is not None:
                logger.warning(
                    "Both prompt and prompt_name were given; using prompt and ignoring prompt_name."
                )
            return prompt
        name = prompt_name if prompt_name is not None else self.default_prompt_name
        if name is None:
            self._prompt_resolver.warn_if_prompt_needed(self.prompts)
            return None
        if name not in self.prompts:
            raise ValueError(
                f"Prompt name {name!r} not found; the model's prompts are {sorted(self.prompts)}."
            )
        return self.prompts[name]

    def _reader(self, task: str | None) -> nn.Module | None:
        """The module reading the texts of ``task``: the first, or the first of a leading Router's route."""
        modules = routed_modules(list(self), task)
        return modules[0] if modules else None

    def _prompt_length(self, prompt: str | None, task: str | None = None) -> int:
        if not prompt:
            return 0
        key = (task, prompt)  # a Router's routes may tokenize the prompt differently
        if key not in self._prompt_lengths:
            reader = self._reader(task)
            if not isinstance(reader, InputModule):
                raise TypeError(f"The first module must read text, found {type(reader).__name__}.")
            self._prompt_lengths[key] = reader.prompt_length(prompt)
        return self._prompt_lengths[key]
