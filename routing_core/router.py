"""The router contract: prompts -> strong-win rates in [0, 1]. The decision rule lives in `routing_core.policy`.

The base contract (stable; new routers in routing_core/routers/ rely on it):

- subclass `Router` (or `routers._base.TrainedRouter` for fitted ones), set the class attributes `name`,
  `needs_training`, `uses_embeddings` and `trains_on`, and implement `_win_rate(list[str]) -> array`;
- take every hyperparameter in `__init__` and store it under the same attribute name: `get_params()` reads
  them back (sklearn style) and drives `describe()`, `__repr__` and the checkpoint config;
- keep fitted state out of `__init__` arguments; raise `NotFittedError` when asked to score before fitting;
- use local random generators only (`np.random.default_rng(seed)`, `torch.Generator`), never global seeds;
- be thread-safe in `_win_rate` (wrappers call it from worker threads, concurrently).

`win_rate` validates inputs and outputs; `route` and `threshold_for_strong_fraction` are built on it.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np

from routing_core.calibration import threshold_for_strong_fraction
from routing_core.policy import Decision, Side, decide
from routing_core.validation import check_prompts, check_strong_fraction, check_threshold

#: What a router trains on: `"battles"` (every model pair: MF, SW ranking), `"pairs"` (strong-vs-weak
#: examples: classifiers), or `None` (training-free).
TrainsOn = Literal["battles", "pairs", "tables"] | None


class Router(ABC):
    """A router estimates, per prompt, the probability that the strong model's answer beats the weak one's.

    Subclasses implement `_win_rate` on a list of strings; `win_rate` validates the input and output so every
    router returns a float64 array in [0, 1] of the same length. `reference_win_rates`, when set, is a sorted
    sample of the router's win rates on a reference prompt set (Arena prompts for the bundled routers): it turns
    a target share of strong calls into a threshold without any data on the user's side.
    """

    name: ClassVar[str] = "router"
    #: Whether the router must be fitted (or loaded from a checkpoint) before it can score prompts.
    needs_training: ClassVar[bool] = True
    #: Whether scoring embeds the prompts with the router's embedder (training passes embeddings when True).
    uses_embeddings: ClassVar[bool] = False
    #: What training data the router learns from (see `TrainsOn`).
    trains_on: ClassVar[TrainsOn] = None
    #: Whether win rates are random draws (evaluation averages such routers over seeds).
    stochastic: ClassVar[bool] = False
    reference_win_rates: np.ndarray | None = None

    @abstractmethod
    def _win_rate(self, prompts: list[str]) -> np.ndarray:
        """Win rates for a validated, non-empty list of prompts."""

    def win_rate(self, prompts: Sequence[str]) -> np.ndarray:
        """Strong-win rates in [0, 1], one per prompt, as float64."""
        items = check_prompts(prompts)
        if not items:
            return np.zeros(0, dtype=np.float64)
        rates = np.asarray(self._win_rate(items), dtype=np.float64).reshape(-1)
        if rates.shape[0] != len(items):
            raise RuntimeError(
                f"{type(self).__name__} returned {rates.shape[0]} win rates for {len(items)} prompts"
            )
        if np.isnan(rates).any():
            raise RuntimeError(f"{type(self).__name__} returned NaN win rates")
        return np.clip(rates, 0.0, 1.0)

    def route(self, prompts: Sequence[str], threshold: float) -> list[Decision]:
        """Decisions for a batch by the policy's threshold rule (strong iff win_rate >= threshold)."""
        t = check_threshold(threshold)
        return [decide(float(w), t) for w in self.win_rate(prompts)]

    def threshold_for_strong_fraction(self, fraction: float) -> float:
        """The threshold that sends about `fraction` of reference prompts to the strong model."""
        f = check_strong_fraction(fraction)
        if self.reference_win_rates is None or len(self.reference_win_rates) == 0:
            raise ValueError(
                f"router {self.name!r} has no reference win rates to turn strong_fraction into a threshold; "
                "pass an explicit threshold or calibrate it with `routing-core calibrate --prompts FILE`"
            )
        return threshold_for_strong_fraction(self.reference_win_rates, f)

    # --- estimator protocol ------------------------------------------------------------------------------

    @classmethod
    def param_names(cls) -> list[str]:
        """The hyperparameters: the keyword arguments of `__init__`, in order."""
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]

    def get_params(self) -> dict[str, Any]:
        """Every hyperparameter as given to `__init__` (read back from the attribute of the same name; a
        parameter a third-party router does not store is left out)."""
        return {n: getattr(self, n) for n in self.param_names() if hasattr(self, n)}

    def fingerprint(self) -> str | None:
        """A short hash of the fitted state, telling two trained routers of one kind apart (None: no state)."""
        return None

    def describe(self) -> dict[str, Any]:
        """A small JSON-able description (metadata, model cards, logs, LangChain cache keys): the kind, the
        hyperparameters, and a weights hash for fitted routers."""
        out: dict[str, Any] = {"router": self.name}
        for k, v in self.get_params().items():
            out[k] = (
                v
                if v is None or isinstance(v, str | int | float | bool)
                else getattr(v, "name", type(v).__name__)
            )
        fp = self.fingerprint()
        if fp is not None:
            out["weights"] = fp
        return out

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


__all__ = [
    "Decision",
    "Router",
    "Side",
    "TrainsOn",
    "check_prompts",
    "check_strong_fraction",
    "check_threshold",
    "decide",
]
