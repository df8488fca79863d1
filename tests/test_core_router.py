from __future__ import annotations

import json

import numpy as np
import pytest

from routing_core import (
    CheckpointError,
    Decision,
    RandomRouter,
    Router,
    UnknownRouterError,
    available_routers,
    check_threshold,
    load_router,
    threshold_for_strong_fraction,
)
from routing_core.checkpoints import write_checkpoint
from routing_core.registry import load_checkpoint


def test_random_router_is_uniform_deterministic_and_seedable() -> None:
    r = RandomRouter(seed=1)
    prompts = [f"prompt number {i}" for i in range(5000)]
    a = r.win_rate(prompts)
    assert a.dtype == np.float64 and a.shape == (5000,)
    assert ((a >= 0) & (a < 1)).all()
    assert abs(a.mean() - 0.5) < 0.02
    np.testing.assert_array_equal(a, r.win_rate(prompts))  # same prompt, same rate
    np.testing.assert_array_equal(a[:3], np.concatenate([r.win_rate([p]) for p in prompts[:3]]))
    assert not np.array_equal(a, RandomRouter(seed=2).win_rate(prompts))


def test_decision_rule_ties_go_strong() -> None:
    assert Decision(0.5, 0.5).side == "strong"
    assert Decision(0.4999, 0.5).side == "weak"
    assert [d.side for d in Router.route(FixedRouter([0.2, 0.7, 0.5]), ["a", "b", "c"], 0.5)] == [
        "weak",
        "strong",
        "strong",
    ]


class FixedRouter(Router):
    name = "fixed"

    def __init__(self, rates: list[float]) -> None:
        self.rates = rates

    def _win_rate(self, prompts: list[str]) -> np.ndarray:
        return np.array(self.rates[: len(prompts)])


def test_win_rate_validates_input_and_output() -> None:
    r = RandomRouter()
    with pytest.raises(TypeError, match="single string"):
        r.win_rate("hello")
    with pytest.raises(TypeError, match=r"prompts\[1\]"):
        r.win_rate(["ok", 3])  # type: ignore[list-item]
    assert r.win_rate([]).shape == (0,)
    with pytest.raises(RuntimeError, match="NaN"):
        FixedRouter([float("nan")]).win_rate(["x"])
    with pytest.raises(RuntimeError, match="2 win rates for 3"):
        FixedRouter([0.1, 0.2]).win_rate(["a", "b", "c"])


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "0.5", True])
def test_threshold_validation(bad: object) -> None:
    with pytest.raises(ValueError, match="threshold"):
        check_threshold(bad)  # type: ignore[arg-type]


def test_strong_fraction_thresholds() -> None:
    r = RandomRouter()
    assert r.threshold_for_strong_fraction(0.3) == pytest.approx(0.7)
    sample = np.linspace(0, 1, 101)
    t = threshold_for_strong_fraction(sample, 0.2)
    assert np.mean(sample >= t) == pytest.approx(0.2, abs=0.011)
    assert threshold_for_strong_fraction(sample, 1.0) == 0.0
    below_one = sample[:-1]  # thresholds live in [0, 1]: a certain win (1.0) always goes strong
    assert np.mean(below_one >= threshold_for_strong_fraction(below_one, 0.0)) == 0.0
    with pytest.raises(ValueError, match="no reference win rates"):
        FixedRouter([0.1]).threshold_for_strong_fraction(0.5)


def test_load_router_names_paths_and_errors(tmp_path) -> None:
    assert isinstance(load_router("random", seed=3), RandomRouter)
    assert "random" in available_routers()
    with pytest.raises(UnknownRouterError, match="unknown router 'nope'"):
        load_router("nope")
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupted config"):
        load_router(str(tmp_path / "ckpt"))
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(CheckpointError, match="not a router checkpoint"):
        load_checkpoint(tmp_path / "ckpt")
    write_checkpoint(tmp_path / "c2", "no-such-kind", {})
    with pytest.raises(UnknownRouterError, match="no-such-kind"):
        load_router(tmp_path / "c2")


# --- the routing policy ---------------------------------------------------------------------------------------


def _policy(rates: list[float], **kw: object) -> object:
    from routing_core.policy import TwoModelPolicy

    return TwoModelPolicy(FixedRouter(rates), "big-model", "small-model", **kw)  # type: ignore[arg-type]


def test_policy_threshold_rule_and_payload_schema() -> None:
    from routing_core.policy import PAYLOAD_KEYS

    p = _policy([0.5], threshold=0.5)
    d = p.decide("prove that sqrt(2) is irrational", "last_user_message")  # type: ignore[attr-defined]
    assert d.side == "strong" and d.win_rate == 0.5 and d.reason == "router"  # ties go strong
    payload = d.payload()
    assert tuple(payload) == PAYLOAD_KEYS
    assert (
        payload["model_name"] == "big-model" and payload["router"] == "fixed" and payload["threshold"] == 0.5
    )
    assert payload["source"] == "last_user_message" and payload["text_preview"].startswith("prove that")
    assert len(payload["text_hash"]) == 16
    assert _policy([0.4999], threshold=0.5).decide("x").side == "weak"  # type: ignore[attr-defined]


def test_policy_forced_and_no_text_skip_the_router() -> None:
    class Boom(Router):
        name = "boom"

        def _win_rate(self, prompts: list[str]) -> np.ndarray:
            raise AssertionError("the router must not be consulted")

    from routing_core.policy import TwoModelPolicy

    p = TwoModelPolicy(Boom(), "big-model", "small-model", threshold=0.3, no_text_side="weak")
    forced = p.decide("anything", forced="small-model")
    assert (forced.side, forced.reason, forced.win_rate, forced.text_hash) == ("weak", "forced", None, None)
    assert p.decide("x", forced="strong").side == "strong"
    with pytest.raises(AssertionError, match="must not be consulted"):
        p.decide("x", forced="auto")  # "auto" lets the router decide
    blank = p.decide("   ", "last_user_message")
    assert (blank.side, blank.reason, blank.source) == ("weak", "no_text", "last_user_message")
    with pytest.raises(ValueError, match="cannot force the routed model to 'gpt-9'.*'strong', 'weak'"):
        p.decide("x", forced="gpt-9")
    same = TwoModelPolicy(Boom(), "m", "m", threshold=0.3)
    with pytest.raises(ValueError, match="names more than one routed model"):
        same.decide("x", forced="m")


def test_policy_resolves_exactly_one_of_threshold_and_strong_fraction() -> None:
    from routing_core.policy import TwoModelPolicy

    with pytest.raises(ValueError, match="got neither"):
        TwoModelPolicy(RandomRouter(), "a", "b")
    with pytest.raises(ValueError, match="got both"):
        TwoModelPolicy(RandomRouter(), "a", "b", threshold=0.5, strong_fraction=0.5)
    with pytest.raises(ValueError, match=r"strong_fraction must be in \[0, 1\]"):
        TwoModelPolicy(RandomRouter(), "a", "b", strong_fraction=1.5)
    assert TwoModelPolicy(RandomRouter(), "a", "b", strong_fraction=0.3).threshold == pytest.approx(0.7)
    with pytest.raises(ValueError, match="no_text_side must be one of 'strong', 'weak'"):
        TwoModelPolicy(RandomRouter(), "a", "b", threshold=0.5, no_text_side="medium")


def test_pick_routing_text_fallback_rule() -> None:
    from routing_core.policy import pick_routing_text

    assert pick_routing_text([(True, "first"), (False, "answer"), (True, "second")]) == (
        "second",
        "last_user_message",
    )
    # the last user turn has no text (an image): the closest earlier user turn with text
    assert pick_routing_text([(True, "first"), (True, None), (False, "tool output")]) == (
        "first",
        "earlier_user_message",
    )
    # assistant/system/tool text never counts
    assert pick_routing_text([(False, "system prompt"), (False, "tool output")]) == ("", "no_user_text")
    assert pick_routing_text([]) == ("", "no_user_text")


async def test_policy_adecide_runs_the_router_off_the_event_loop() -> None:
    import asyncio
    import threading

    from routing_core.policy import TwoModelPolicy

    loop_thread = threading.get_ident()
    seen: list[int] = []

    class Where(Router):
        name = "where"

        def _win_rate(self, prompts: list[str]) -> np.ndarray:
            seen.append(threading.get_ident())
            return np.array([0.9])

    d = await TwoModelPolicy(Where(), "a", "b", threshold=0.5).adecide("hi")
    assert d.side == "strong" and seen and seen[0] != loop_thread
    assert asyncio.get_running_loop() is not None


def test_text_preview_is_short_and_can_be_disabled() -> None:
    from routing_core.policy import text_fingerprint

    h, preview = text_fingerprint("word " * 100)
    assert preview is not None and len(preview) == 48 and preview.endswith("…")
    assert text_fingerprint("word " * 100, preview_chars=0) == (h, None)
    assert text_fingerprint("") == (None, None)


def test_decision_model_is_deprecated_with_a_clear_message() -> None:
    with pytest.warns(DeprecationWarning, match="use Decision.side"):
        assert Decision(0.9, 0.5).model == "strong"


# --- import structure -----------------------------------------------------------------------------------------


def _import_graph(package: str) -> dict[str, set[str]]:
    """Module -> package modules it imports at module level (TYPE_CHECKING and function-level imports excluded)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / package
    graph: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        rel = path.relative_to(root.parent).with_suffix("")
        mod = ".".join(rel.parts).removesuffix(".__init__")
        deps: set[str] = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(package):
                deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith(package))
        graph[mod] = deps
    return graph


@pytest.mark.parametrize("package", ["routing_core", "langchain_routellm", "llamaindex_routellm"])
def test_no_import_cycle_between_modules(package: str) -> None:
    graph = _import_graph(package)
    packages = {m for m in graph if any(k.startswith(m + ".") for k in graph)}

    def deps(m: str) -> set[str]:
        # importing a package's submodule runs the package's __init__ first; a package's own __init__ is skipped
        return {d for d in graph.get(m, set()) if d != m and not (d in packages and m.startswith(d + "."))}

    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in deps(m):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(d) :] + [d]))
            if d in graph and d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def _win_rate_threshold_comparisons(path: object) -> list[int]:
    """Lines of `path` where code (not prose) orders something named like a win rate against a threshold."""
    import ast
    from pathlib import Path

    source = Path(str(path)).read_text()
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and any(
            isinstance(o, ast.Gt | ast.GtE | ast.Lt | ast.LtE) for o in node.ops
        ):
            sides = [ast.get_source_segment(source, x) or "" for x in [node.left, *node.comparators]]
            if any("win" in s or "rate" in s or "score" in s for s in sides) and any(
                "thresh" in s for s in sides
            ):
                lines.append(node.lineno)
    return lines


def test_the_policy_is_the_only_place_comparing_a_win_rate_with_a_threshold() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    hits = {
        str(p.relative_to(root)): found
        for pkg in ("routing_core", "langchain_routellm", "llamaindex_routellm")
        for p in sorted((root / pkg).rglob("*.py"))
        if (found := _win_rate_threshold_comparisons(p))
    }
    assert list(hits) == ["routing_core/policy.py"], hits
