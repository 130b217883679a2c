"""Router: a different module sequence per task, e.g. a cheap query encoder and a full document encoder.

``encode_query`` passes ``task="query"``, ``encode_document`` ``task="document"``, and ``encode(task=...)``
any route name; the encode loop replaces the Router by the modules of the route the task picks
(:func:`routed_modules`), so that a routed model batches and tokenizes like any other.

Folder layout (the reference's): ``router_config.json`` with the class of each sub-module (``types``), the
sub-modules of each route (``structure``) and the Router's own ``parameters``; one sub-folder per sub-module,
named ``{route}_{index}_{class}``. ``Asym``, the Router's older name, wrote the same content to
``config.json``; such folders load too.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, cast

from torch import nn

from sentencekit.encoding.batching import IdRows
from sentencekit.encoding.tokens import TokenizedTexts
from sentencekit.errors import ModelFormatError
from sentencekit.modules.base import Features, Module, read_json, write_json
from sentencekit.modules.input_module import InputModule

__all__ = ["Asym", "Router", "routed_modules"]

logger = logging.getLogger(__name__)

# What encode reads: text only, so route_mappings keys are matched with this modality.
TEXT = "text"
# Config files, newest first: Router's, then the one Asym wrote.
_CONFIG_FILES = ("router_config.json", "config.json")

RouteKey = tuple[str | None, str | tuple[str, ...] | None]


class Router(InputModule):
    """Sends texts through one of several module sequences, picked by the ``task`` of the encode call.

    A route is chosen in this order: ``route_mappings[(task, "text")]``, ``[(task, None)]``,
    ``[(None, "text")]``, ``[(None, None)]``; then the route named ``task``; then a route named ``"text"``.
    A task that none of these match is an error; no task at all takes ``default_route``.

    Args:
        sub_modules: Route name -> the modules of that route, in order; the first one reads the text.
        default_route: The route for calls without a task. ``None`` with ``allow_empty_key=True``: the first
            route; with ``allow_empty_key=False``: calls without a task are an error.
        allow_empty_key: Let calls without a task take the first route when ``default_route`` is ``None``.
        route_mappings: ``(task, modality) -> route`` rules, ``None`` matching anything (sentencekit encodes
            text, so the modality is ``"text"``).

    Raises:
        ValueError: For no routes, an empty route, or a default route or mapping target that is not a route.

    Example:
        >>> from sentencekit.sparse_encoder import SparseEncoder
        >>> from sentencekit.sparse_encoder.models import MLMTransformer, SparseStaticEmbedding, SpladePooling
        >>> document = MLMTransformer("naver/splade-v3")  # doctest: +SKIP
        >>> query = SparseStaticEmbedding(document.tokenizer, frozen=True)  # doctest: +SKIP
        >>> router = Router.for_query_document([query], [document, SpladePooling("max")])  # doctest: +SKIP
        >>> model = SparseEncoder(modules=[router])  # doctest: +SKIP
        >>> model.encode_query("weather in new york")  # query route: no encoder runs  # doctest: +SKIP
    """

    config_file: ClassVar[str] = "router_config.json"
    config_keys: ClassVar[tuple[str, ...]] = ("default_route", "allow_empty_key", "route_mappings")
    reference_type: ClassVar[str] = "sentence_transformers.models.Router"

    def __init__(
        self,
        sub_modules: dict[str, list[nn.Module]],
        default_route: str | None = None,
        allow_empty_key: bool = True,
        route_mappings: dict[RouteKey, str] | None = None,
    ) -> None:
        super().__init__()
        if not sub_modules:
            raise ValueError("A Router needs at least one route: sub_modules is empty.")
        routes = list(sub_modules)
        empty = [name for name, modules in sub_modules.items() if not modules]
        if empty:
            raise ValueError(
                f"Routes {empty} have no modules; each route needs at least the one reading text."
            )
        if default_route is not None and default_route not in sub_modules:
            raise ValueError(f"default_route {default_route!r} is not one of the routes {routes}.")
        mappings = dict(route_mappings or {})
        wrong = sorted({target for target in mappings.values() if target not in sub_modules})
        if wrong:
            raise ValueError(f"route_mappings point to {wrong}, which are not among the routes {routes}.")
        self.sub_modules = nn.ModuleDict(
            {name: nn.Sequential(*modules) for name, modules in sub_modules.items()}
        )
        self.default_route = routes[0] if default_route is None and allow_empty_key else default_route
        self.allow_empty_key = allow_empty_key
        # a tuple modality matches in any order
        self.route_mappings: dict[RouteKey, str] = {
            (task, tuple(sorted(modality)) if isinstance(modality, tuple) else modality): target
            for (task, modality), target in mappings.items()
        }

    @classmethod
    def for_query_document(
        cls,
        query_modules: list[nn.Module],
        document_modules: list[nn.Module],
        default_route: str | None = "document",
        allow_empty_key: bool = True,
    ) -> Router:
        """A Router with a ``"query"`` and a ``"document"`` route (``encode_query`` / ``encode_document``).

        Args:
            query_modules: The modules that encode queries.
            document_modules: The modules that encode documents (and, by default, calls without a task).
            default_route: The route of calls without a task.
            allow_empty_key: See :class:`Router`.
        """
        return cls(
            {"query": query_modules, "document": document_modules},
            default_route=default_route,
            allow_empty_key=allow_empty_key,
        )

    # --- routing ------------------------------------------------------------------------------------------

    def route_name(self, task: str | None) -> str:
        """The name of the route that texts of ``task`` take.

        Raises:
            ValueError: For a task no route matches, or no task and no default route.
        """
        for key in ((task, TEXT), (task, None), (None, TEXT), (None, None)):
            if key in self.route_mappings:
                return self.route_mappings[key]
        if task and task in self.sub_modules:
            return task
        if TEXT in self.sub_modules:
            return TEXT
        routes = list(self.sub_modules)
        if task is not None:
            raise ValueError(f"No route for task {task!r}: this Router's routes are {routes}.")
        if self.default_route is None:
            hint = (
                " When training, map each dataset column to a route with router_mapping in the training "
                "arguments."
                if self.training
                else ""
            )
            raise ValueError(
                f"This Router has no default route, so each call needs a task: pass task= one of {routes} "
                "(encode_query and encode_document pass 'query' and 'document'), or build the Router with "
                f"default_route=...{hint}"
            )
        return self.default_route

    def route(self, task: str | None) -> list[nn.Module]:
        """The modules that encode texts of ``task``, in order (see :meth:`route_name`)."""
        return self.routes()[self.route_name(task)]

    def routes(self) -> dict[str, list[nn.Module]]:
        """Every route's modules, by route name."""
        return {name: list(cast(nn.Sequential, route)) for name, route in self.sub_modules.items()}

    def _reader(self, task: str | None = None) -> InputModule:
        reader = self.route(task)[0]
        if not isinstance(reader, InputModule):
            raise TypeError(
                f"The route {self.route_name(task)!r} does not start with a module that reads text, found "
                f"{type(reader).__name__}."
            )
        return reader

    def _readers(self) -> list[nn.Module]:
        return [route[0] for route in self.routes().values()]

    # --- the InputModule interface: the default route's reader --------------------------------------------

    @property
    def tokenizer(self) -> Any:
        """The first route's tokenizer (routes may each have their own)."""
        return next((r.tokenizer for r in self._readers() if getattr(r, "tokenizer", None) is not None), None)

    @property
    def max_seq_length(self) -> int | float:
        """The routes' longest input in tokens (the largest when routes differ)."""
        lengths = {r.max_seq_length for r in self._readers() if isinstance(r, InputModule)}
        if len(lengths) > 1:
            logger.warning("The routes truncate at different lengths %s; reporting the largest.", lengths)
        return max(lengths) if lengths else 0

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        for reader in self._readers():
            attribute = getattr(type(reader), "max_seq_length", None)
            if isinstance(attribute, property) and attribute.fset is not None:
                reader.max_seq_length = value  # type: ignore[assignment]

    def tokenize_unpadded(self, texts: list[str]) -> TokenizedTexts:
        """Token ids of ``texts`` by the default route's reader."""
        return self._reader().tokenize_unpadded(texts)

    def collate(self, input_ids: IdRows, token_type_ids: IdRows | None = None) -> Features:
        """One batch of features by the default route's reader."""
        return self._reader().collate(input_ids, token_type_ids)

    def tokenize(self, texts: list[str], task: str | None = None) -> Features:
        """Tokenize ``texts`` with the reader of ``task``'s route; the task goes along in the features."""
        features = self._reader(task).tokenize(texts)
        features["task"] = task
        return features

    def prompt_length(self, prompt: str) -> int:
        """Leading tokens ``prompt`` occupies in the default route."""
        return self._reader().prompt_length(prompt)

    @property
    def default_batch_size(self) -> int:
        """The default route's texts per batch."""
        return self._reader().default_batch_size

    def get_sentence_embedding_dimension(self) -> int | None:
        """Width of the output vectors: the first route's (routes should agree; a warning says when not)."""
        dims = [d for d in (_route_dimension(route) for route in self.routes().values()) if d]
        if len(set(dims)) > 1:
            logger.warning("The routes give vectors of different widths %s; reporting the first.", dims)
        return dims[0] if dims else None

    get_embedding_dimension = get_sentence_embedding_dimension

    # --- forward / save / load ----------------------------------------------------------------------------

    def forward(self, features: Features, task: str | None = None) -> Features:
        """Run the modules of ``task``'s route (default: ``features["task"]``, set by :meth:`tokenize`)."""
        for module in self.route(task if task is not None else features.get("task")):
            features = module(features)
        return features

    def get_config(self) -> dict[str, Any]:
        """``parameters`` of ``router_config.json``; route_mappings keys written as the reference does."""
        return {
            "default_route": self.default_route,
            "allow_empty_key": self.allow_empty_key,
            "route_mappings": {str(key): target for key, target in self.route_mappings.items()},
        }

    def cache_identity(self) -> dict[str, list[Any]]:
        """Each route's module classes and configs, for embedding-cache keys."""
        return {
            name: [[type(m).__qualname__, m.get_config() if isinstance(m, Module) else None] for m in route]
            for name, route in self.routes().items()
        }

    def save(self, path: str | Path) -> None:
        """Write each sub-module into ``{route}_{index}_{class}`` and ``router_config.json`` into ``path``.

        A module that several routes share is written once.

        Raises:
            TypeError: When a route holds a module that is not a sentencekit module.
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        names: dict[int, str] = {}
        types: dict[str, str] = {}
        structure: dict[str, list[str]] = {}
        for route, modules in self.routes().items():
            structure[route] = []
            for index, module in enumerate(modules):
                if not isinstance(module, Module):
                    raise TypeError(
                        f"Route {route!r} holds a {type(module).__name__}; only sentencekit modules can be "
                        "saved."
                    )
                if id(module) not in names:
                    names[id(module)] = f"{route}_{index}_{type(module).__name__}"
                    types[names[id(module)]] = module.reference_type
                    module.save(path / names[id(module)])
                structure[route].append(names[id(module)])
        write_json(
            path / self.config_file, {"types": types, "structure": structure, "parameters": self.get_config()}
        )

    @classmethod
    def load(
        cls,
        path: str | Path,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        trust_remote_code: bool = False,
        cache_dir: str | None = None,
    ) -> Router:
        """Build the Router and its sub-modules from folder ``path`` (Router's or Asym's layout).

        The keyword arguments go to the Transformer sub-modules, as in
        :meth:`~sentencekit.modules.Transformer.load`.

        Raises:
            ModelFormatError: For a missing or malformed config, or a sub-module class sentencekit lacks.
        """
        from sentencekit.modules.loader import load_module

        path = Path(path)
        config_path = next((path / name for name in _CONFIG_FILES if (path / name).is_file()), None)
        if config_path is None:
            raise ModelFormatError(f"{path} holds no router_config.json (nor an Asym config.json).")
        config = read_json(config_path)
        if not isinstance(config.get("types"), dict) or not isinstance(config.get("structure"), dict):
            raise ModelFormatError(f"{config_path} must hold 'types' and 'structure' objects.")
        transformer_args: dict[str, Any] = {
            "model_kwargs": model_kwargs,
            "tokenizer_kwargs": tokenizer_kwargs,
            "config_kwargs": config_kwargs,
            "trust_remote_code": trust_remote_code,
            "cache_dir": cache_dir,
        }
        loaded: dict[str, Module] = {}
        for name, type_ref in config["types"].items():
            if Path(name).is_absolute() or ".." in Path(name).parts:
                raise ModelFormatError(f"{config_path} names sub-module folder {name!r}, outside {path}.")
            loaded[name] = load_module(type_ref, path / name, config_path, transformer_args)
        try:
            sub_modules: dict[str, list[nn.Module]] = {
                route: [loaded[name] for name in names] for route, names in config["structure"].items()
            }
        except KeyError as exc:
            raise ModelFormatError(f"{config_path}: 'structure' names {exc}, which 'types' lacks.") from exc
        parameters = cls.config_from_file(dict(config.get("parameters") or {}))
        parameters["route_mappings"] = _parse_mappings(parameters.get("route_mappings") or {})
        return cls(sub_modules, **parameters)

    def __repr__(self) -> str:
        return nn.Module.__repr__(self)

    def extra_repr(self) -> str:
        """The default route and mappings, shown above the routes."""
        parts = [f"default_route={self.default_route!r}"]
        if self.route_mappings:
            parts.append(f"route_mappings={self.route_mappings}")
        return ", ".join(parts)


# The reference's older name for the Router (sentence-transformers < 5), kept so that old code still runs.
Asym = Router


def routed_modules(modules: Iterable[nn.Module], task: str | None) -> list[nn.Module]:
    """``modules`` with each :class:`Router` replaced by the modules of the route ``task`` takes.

    Raises:
        ValueError: When a Router has no route for ``task`` (see :meth:`Router.route_name`).
    """
    out: list[nn.Module] = []
    for module in modules:
        if isinstance(module, Router):
            out.extend(routed_modules(module.route(task), task))
        else:
            out.append(module)
    return out


def _route_dimension(modules: list[nn.Module]) -> int | None:
    """Width of a route's output: its last module that knows one."""
    for module in reversed(modules):
        for name in ("get_sentence_embedding_dimension", "get_word_embedding_dimension"):
            get_dim = getattr(module, name, None)
            dim = get_dim() if get_dim is not None else None
            if dim:
                return int(dim)
    return None


def _parse_mappings(raw: dict[str, str]) -> dict[RouteKey, str]:
    """``route_mappings`` as saved (``"('query', 'text')"`` keys) back to tuple keys."""
    mappings: dict[RouteKey, str] = {}
    for text, target in raw.items():
        try:
            key = ast.literal_eval(text)
        except (ValueError, SyntaxError) as exc:
            raise ModelFormatError(f"route_mappings key {text!r} is not a (task, modality) pair.") from exc
        if not (isinstance(key, tuple) and len(key) == 2):
            raise ModelFormatError(f"route_mappings key {text!r} is not a (task, modality) pair.")
        mappings[key] = target
    return mappings
