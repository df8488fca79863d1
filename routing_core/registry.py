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
}

DEFAULT_ROUTER = "mf"  # the paper's best router; bundled, loads offline


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
    free = [n for n in _REGISTRY if not getattr(get_router_class(n), "needs_training", True)]
    return sorted(set(bundled_names()) | set(free))


def load_router(name_or_path: str | Path | Router, **kwargs: Any) -> Router:
    """Resolve a bundled name ("mf", "bert", ...), a training-free router ("random"), or a checkpoint folder.

    Keyword arguments go to the router (e.g. `seed` for random, `strong_model`/`weak_model` for MF).
    """
    if isinstance(name_or_path, Router):
        if kwargs:
            raise TypeError("keyword arguments cannot be applied to an already built router")
        return name_or_path
    if not isinstance(name_or_path, str | Path):
        raise TypeError(f"router must be a name, a checkpoint path or a Router, got {type(name_or_path).__name__}")
    name = str(name_or_path)
    bundled = PRETRAINED_DIR / name
    if "/" not in name and "\\" not in name and name and (bundled / "config.json").is_file():
        return load_checkpoint(bundled, **kwargs)
    if name in _REGISTRY:
        cls = get_router_class(name)
        if not getattr(cls, "needs_training", True):
            return cls(**kwargs)
    path = Path(name).expanduser()
    if path.is_dir():
        return load_checkpoint(path, **kwargs)
    raise UnknownRouterError(
        f"unknown router {name!r}: not a bundled router ({', '.join(available_routers())}) "
        "and not a checkpoint folder"
    )
