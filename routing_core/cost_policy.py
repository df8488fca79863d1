"""Cost-aware routing among N models: predicted quality per model, a price per call, one knob.

`CostAwarePolicy` extends `routing_core.policy.RoutingPolicy` (forcing, the no-text rule, the payload, fallback
and the async path are inherited). For each prompt it reads the router's predicted quality of every routed model
(`QualityRouter.quality`) and a cost per call, and picks:

- `lam=` (λ): the model maximising `quality - λ * cost` (cost in USD per call; λ = 0 is "best quality");
- `margin=`: the cheapest model whose predicted quality is within `margin` of the best one;
- `target_cost=` / `target_quality=`: λ calibrated on the router's reference sample (Arena-Hard prompts for the
  bundled router) so that the average cost per call is at most the target, or the average predicted quality at
  least the target at the lowest cost (like `strong_fraction` for two models).

The cost of a call to model M: a fixed `costs={M: usd}` when given; else `prices` (a `PriceTable` or mapping,
defaults included) x (input tokens + `expected_output_tokens`); else the router's own cost line learned from
the training data's recorded costs; else a clear error naming the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from routing_core.costs import Price, PriceTable, count_tokens
from routing_core.errors import RoutingError
from routing_core.policy import PREVIEW_CHARS, Decision, RoutingPolicy
from routing_core.text import chars_for_tokens, clip_text

#: Answer length (tokens) assumed when pricing a call from a price table.
EXPECTED_OUTPUT_TOKENS = 256
TOKEN_SAMPLE_CHARS = chars_for_tokens(1024)
_LAMBDA_GRID = np.concatenate([[0.0], np.geomspace(1e-2, 1e7, 361)])


def estimate_tokens(text: str) -> float:
    """Input tokens of a prompt, cheap on the routing path: exact (tiktoken) up to the clipped sample's size,
    above it the sample's count scaled by length (so a 1 MB prompt costs what a 4 KB one does)."""
    sample = clip_text(text, TOKEN_SAMPLE_CHARS)
    if len(sample) == len(text):
        return float(count_tokens(text))
    return count_tokens(sample) * len(text) / max(1, len(sample))


def check_non_negative(value: Any, what: str) -> float:
    """A finite number >= 0 (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{what} must be a number >= 0, got {value!r}")
    x = float(value)
    if not np.isfinite(x) or x < 0:
        raise ValueError(f"{what} must be a finite number >= 0, got {value!r}")
    return x


def choose_by_lambda(quality: np.ndarray, cost: np.ndarray, lam: float) -> np.ndarray:
    """Per row, the column maximising quality - lam * cost (ties to the cheaper, then the earlier column)."""
    score = quality - lam * cost
    best = score.max(axis=1, keepdims=True)
    tied = score >= best - 1e-12
    return np.argmin(np.where(tied, cost, np.inf), axis=1)


def choose_by_margin(quality: np.ndarray, cost: np.ndarray, margin: float) -> np.ndarray:
    """Per row, the cheapest column whose quality is within `margin` of the row's best (equal cost: the better)."""
    ok = quality >= quality.max(axis=1, keepdims=True) - margin - 1e-12
    masked = np.where(ok, cost, np.inf)
    cheapest = masked <= masked.min(axis=1, keepdims=True) + 1e-15
    return np.argmax(np.where(cheapest, quality, -np.inf), axis=1)


def choose_cheapest(quality: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Per row, the cheapest column (equal cost: the better): the limit of lambda -> infinity."""
    return choose_by_margin(quality, cost, np.inf)


def lambda_for_target(
    quality: np.ndarray,
    cost: np.ndarray,
    target_cost: float | None = None,
    target_quality: float | None = None,
) -> float:
    """The λ meeting a target on a reference sample: the smallest λ whose mean cost is <= `target_cost`, or the
    largest λ whose mean predicted quality is >= `target_quality` (cheapest first)."""
    rows = np.arange(len(quality))
    means = []
    for lam in _LAMBDA_GRID:
        pick = choose_by_lambda(quality, cost, float(lam))
        means.append((float(cost[rows, pick].mean()), float(quality[rows, pick].mean())))
    if target_cost is not None:
        for lam, (c, _) in zip(_LAMBDA_GRID, means, strict=True):
            if c <= target_cost + 1e-15:
                return float(lam)
        floor = float(cost[rows, choose_cheapest(quality, cost)].mean())
        raise ValueError(
            f"target_cost={target_cost:g} USD per call is below what these models can reach on the reference "
            f"sample (always the cheapest: {floor:g}); raise it, or pass lam= / margin="
        )
    assert target_quality is not None
    if target_quality > means[0][1] + 1e-12:
        raise ValueError(
            f"target_quality={target_quality:g} is above the best predicted quality on the reference sample "
            f"({means[0][1]:.4f}, lam=0); lower it, or pass lam=0"
        )
    best = 0.0
    for lam, (_, q) in zip(_LAMBDA_GRID, means, strict=True):
        if q >= target_quality - 1e-12:
            best = float(lam)
    return best


class CostAwarePolicy(RoutingPolicy):
    """Route among N models by predicted quality and cost (see the module doc).

    Args:
        router: A multi-model router (`routing_core.routers._quality.QualityRouter`, e.g. `load_router("multi")`).
        models: Routing key -> model name, in order (e.g. `{"gpt-4o": "gpt-4o", "mini": "gpt-4o-mini"}`); the keys
            are what `Decision.side` holds and what callers force.
        lam / margin / target_cost / target_quality: exactly one (see the module doc).
        model_map: Model name (or key) -> the router model to treat it as, for models the router does not know.
        costs: Key or model name -> fixed USD per call (overrides prices).
        prices: A `PriceTable` or {model: (input, output) USD per 1M tokens}; the defaults are included.
        expected_output_tokens: Tokens an answer is assumed to have when pricing from a price table.
        no_text_side: Where calls with no text go (default: the first model).
    """

    def __init__(
        self,
        router: Any,
        models: Mapping[str, str],
        *,
        lam: float | None = None,
        margin: float | None = None,
        target_cost: float | None = None,
        target_quality: float | None = None,
        model_map: Mapping[str, str] | None = None,
        costs: Mapping[str, float] | None = None,
        prices: PriceTable | Mapping[str, Price | tuple[float, float]] | None = None,
        expected_output_tokens: int = EXPECTED_OUTPUT_TOKENS,
        no_text_side: str | None = None,
        router_name: str | None = None,
        preview_chars: int = PREVIEW_CHARS,
        owner: str = "the cost-aware policy",
    ) -> None:
        if not callable(getattr(router, "quality", None)) or not hasattr(router, "models"):
            raise TypeError(
                f"{owner} needs a multi-model router (one with quality() and models, e.g. load_router('multi')); "
                f"got {type(router).__name__}"
            )
        if not isinstance(models, Mapping) or len(models) < 2:
            raise ValueError(f"{owner} needs at least two models as {{key: model name}}, got {models!r}")
        for key, name in models.items():
            if not isinstance(key, str) or not key or not isinstance(name, str) or not name:
                raise ValueError(
                    f"{owner}: model keys and names must be non-empty strings, got {key!r}: {name!r}"
                )
        knobs = {"lam": lam, "margin": margin, "target_cost": target_cost, "target_quality": target_quality}
        given = [k for k, v in knobs.items() if v is not None]
        if len(given) != 1:
            raise ValueError(
                f"{owner} needs exactly one of lam (quality - lam * USD per call), margin (cheapest within margin "
                f"of the best), target_cost (USD per call on average) or target_quality; got {given or 'none'}"
            )
        keys = list(models)
        self.quality_router: Any = router
        super().__init__(
            router,
            models,
            no_text_side=no_text_side if no_text_side is not None else keys[0],
            router_name=router_name,
            threshold=None,
            preview_chars=preview_chars,
        )
        self.model_map = dict(model_map or {})
        self.columns = [self._column(k) for k in keys]
        self.expected_output_tokens = int(
            check_non_negative(expected_output_tokens, "expected_output_tokens")
        )
        self.price_table = prices if isinstance(prices, PriceTable) else PriceTable(prices)
        self.fixed_costs = {
            self._key_of(k, "costs"): check_non_negative(v, f"costs[{k!r}]") for k, v in (costs or {}).items()
        }
        self.margin = None if margin is None else check_non_negative(margin, "margin")
        self.target_cost = None if target_cost is None else check_non_negative(target_cost, "target_cost")
        self.target_quality = (
            None if target_quality is None else check_non_negative(target_quality, "target_quality")
        )
        self.cost_lines = self._resolve_cost_lines()  # every model must be priceable: fail at construction
        if lam is not None:
            self.lam: float | None = check_non_negative(lam, "lam")
        elif self.margin is not None:
            self.lam = None
        else:
            self.lam = self._calibrated_lambda(owner)

    # --- construction helpers -----------------------------------------------------------------------------

    def _column(self, key: str) -> int:
        name = self.model_names[key]
        mapping = {**self.model_map}
        if key in mapping and name not in mapping:
            mapping[name] = mapping[key]
        return int(self.quality_router.model_index(name, mapping))

    def _key_of(self, key_or_name: str, what: str) -> str:
        if key_or_name in self.model_names:
            return key_or_name
        keys = [k for k, n in self.model_names.items() if n == key_or_name]
        if len(keys) != 1:
            raise ValueError(
                f"{what} names {key_or_name!r}, which is not one routed model: use {self._choices()}"
            )
        return keys[0]

    def _calibrated_lambda(self, owner: str) -> float:
        rq = getattr(self.router, "reference_quality", None)
        rt = getattr(self.router, "reference_tokens", None)
        if rq is None or rt is None or len(rq) == 0:
            raise ValueError(
                f"router {self.router_name!r} has no reference sample to turn a target into lam; pass lam= or margin="
            )
        q = np.asarray(rq, dtype=np.float64)[:, self.columns]
        return lambda_for_target(
            q, self.cost_of_tokens(np.asarray(rt)), self.target_cost, self.target_quality
        )

    # --- costs --------------------------------------------------------------------------------------------

    def _resolve_cost_lines(self) -> np.ndarray:
        """Per model `(a, b)` with cost per call = a + b * input tokens, resolved once (see the module doc)."""
        out = np.empty((len(self.sides), 2))
        for j, key in enumerate(self.sides):
            name = self.model_names[key]
            if key in self.fixed_costs:
                out[j] = (self.fixed_costs[key], 0.0)
                continue
            price = self.price_table.get(name)
            if price is not None:
                out[j] = (self.expected_output_tokens * price.output / 1e6, price.input / 1e6)
                continue
            learned = self.quality_router.learned_cost(self.columns[j], np.array([0.0, 1.0]))
            if learned is None:
                raise RoutingError(
                    f"no price for model {name!r}: pass costs={{{key!r}: <USD per call>}} or "
                    f"prices={{{name!r}: (<input USD/1M tokens>, <output USD/1M tokens>)}}"
                )
            out[j] = (learned[0], learned[1] - learned[0])
        return out

    def cost_of_tokens(self, tokens: np.ndarray) -> np.ndarray:
        """USD per call, (len(tokens), n_models), for prompts of the given input token counts."""
        tokens = np.asarray(tokens, dtype=np.float64).reshape(-1, 1)
        return self.cost_lines[:, 0] + tokens * self.cost_lines[:, 1]

    # --- the policy ---------------------------------------------------------------------------------------

    def score_many(
        self, prompts: Sequence[str], embeddings: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Predicted quality and cost per call of every routed model, for a batch (evaluation uses it)."""
        q = self.quality_router.quality(list(prompts), embeddings)[:, self.columns]
        c = self.cost_of_tokens(np.array([estimate_tokens(p) for p in prompts], dtype=np.float64))
        return q, c

    def pick(self, quality: np.ndarray, cost: np.ndarray) -> np.ndarray:
        """The chosen column per row under this policy's knob."""
        if self.margin is not None:
            return choose_by_margin(quality, cost, self.margin)
        assert self.lam is not None
        return choose_by_lambda(quality, cost, self.lam)

    def _score(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        q, c = self.score_many([text])
        return q[0], c[0]

    def _choose(self, text: str, score: Any) -> tuple[str, float | None, Mapping[str, Any]]:
        q, c = score
        j = int(self.pick(q[None, :], c[None, :])[0])
        extra = {
            "qualities": {k: round(float(x), 6) for k, x in zip(self.sides, q, strict=True)},
            "costs": {k: float(x) for k, x in zip(self.sides, c, strict=True)},
            "lambda": self.lam,
            "margin": self.margin,
        }
        return self.sides[j], None, extra

    def fallback_order(self, decision: Decision, allowed: tuple[str, ...] | None) -> tuple[str, ...]:
        """After a failure: with `fallback="other"`, the other models best predicted quality first; a list the
        user gave is tried in its own order (a list naming every model in the `models` order means "other")."""
        rest = super().fallback_order(decision, allowed)
        qualities = decision.extra.get("qualities") if decision.extra else None
        if allowed != self.sides or not isinstance(qualities, Mapping):
            return rest
        return tuple(sorted(rest, key=lambda k: -float(qualities.get(k, 0.0))))

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out.update(
            lam=self.lam,
            margin=self.margin,
            target_cost=self.target_cost,
            target_quality=self.target_quality,
            model_map=dict(self.model_map),
            columns=[self.quality_router.models[j] for j in self.columns],
        )
        return out


__all__ = [
    "EXPECTED_OUTPUT_TOKENS",
    "CostAwarePolicy",
    "choose_by_lambda",
    "choose_by_margin",
    "lambda_for_target",
]
