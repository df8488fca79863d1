"""Router names -> classes (imported lazily so `random` never imports torch), and `load_router`."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from routing_core.checkpoints import PRETRAINED_DIR, bundled_names, checkpoint_kind, read_config
from routing_core.errors import UnknownRouterError
from routing_core.router import Router

_REGISTRY: dict[str, str] = {
    "random": "routing_core.routers.random:RandomRouter",
    "length": "routing_core.routers.length:LengthRouter",
    "logistic": "routing_core.routers.logistic:LogisticRouter",
    "knn": "routing_core.routers.knn:KNNRouter",
    "mf": "routing_core.routers.matrix_factorization:MFRouter",
    "sw_ranking": "routing_core.routers.sw_ranking:SWRankingRouter",
    "bert": "routing_core.routers.bert:BertRouter",
    "causal_llm": "routing_core.routers.causal_llm:CausalLLMRouter",
    "difficulty": "routing_core.routers.difficulty:DifficultyRouter",
    "quality_linear": "routing_core.routers.quality_linear:LinearQualityRouter",
    "quality_knn": "routing_core.routers.quality_knn:KNNQualityRouter",
}

DEFAULT_ROUTER = "difficulty"  # the routing protocol's pick (docs/results.md); bundled, loads offline
DEFAULT_MULTI_ROUTER = "multi"  # the bundled multi-model router (quality per model; docs/results.md)


def register_router(name: str, target: str | type[Router]) -> None:
    """Register a router class (or a lazy "module:Class" path) under `name`."""
    if isinstance(target, type):
        target = f"{target.__module__}:{target.__qualname__}"
    _REGISTRY[name] = target


def registered_names() -> list[str]:
    return sorted(_REGISTRY)


def get_router_class(name: str) -> type[Router]:
    """The class registered under `name`; unknown names list the known ones."""
    if name not in _REGISTRY:
        raise UnknownRouterError(f"unknown router kind {name!r}; known: {', '.join(registered_names())}")
    module, _, attr = _REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def load_checkpoint(folder: str | Path, **kwargs: Any) -> Router:
    """Load a router from a checkpoint folder (JSON + safetensors only; no code runs from it)."""
    config = read_config(folder)
    cls = get_router_class(checkpoint_kind(config, folder))
    return cls.load(Path(folder), config, **kwargs)  # type: ignore[attr-defined]


def available_routers() -> list[str]:
    """Every name `load_router` accepts without a path: bundled checkpoints and training-free routers."""
    free = [n for n in _REGISTRY if not get_router_class(n).needs_training]
    return sorted(set(bundled_names()) | set(free))


def load_router(name_or_path: str | Path | Router, **kwargs: Any) -> Router:
    """Resolve a bundled name ("mf", "bert", ...), a training-free router ("random"), a checkpoint folder, or an
    official RouteLLM checkpoint (a folder in its layout, or a hub id like "routellm/mf_gpt4_augmented").

    Keyword arguments go to the router (e.g. `seed` for random, `strong_model`/`weak_model` for MF).
    """
    if isinstance(name_or_path, Router):
        if kwargs:
            raise TypeError("keyword arguments cannot be applied to an already built router")
        return name_or_path
    if not isinstance(name_or_path, str | Path):
        raise TypeError(
            f"router must be a name, a checkpoint path or a Router, got {type(name_or_path).__name__}"
        )
    name = str(name_or_path)
    bundled = PRETRAINED_DIR / name
    if "/" not in name and "\\" not in name and name and (bundled / "config.json").is_file():
        return load_checkpoint(bundled, **kwargs)
    if name in _REGISTRY:
        cls = get_router_class(name)
        if not cls.needs_training:
            return cls(**kwargs)
    path = Path(name).expanduser()
    if path.is_dir():
        from routing_core.routers.official import is_official_folder, load_official

        try:
            official = is_official_folder(path)
        except RecursionError:  # a malformed config: read_config below reports it as a CheckpointError
            official = False
        if official:  # RouteLLM's own layouts
            return load_official(path, **kwargs)
        return load_checkpoint(path, **kwargs)
    from routing_core.hub import looks_like_hub_id

    if looks_like_hub_id(name):  # "org/name" that is not a local path: an official RouteLLM hub checkpoint
        from routing_core.routers.official import load_official

        return load_official(name, **kwargs)
    raise UnknownRouterError(
        f"unknown router {name!r}: not a bundled router ({', '.join(available_routers())}) "
        "and not a checkpoint folder"
    )
