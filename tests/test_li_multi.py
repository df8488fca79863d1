# ruff: noqa: F811
"""RoutedLLM over three models (issue 13, item 3) with scripted fakes: `models={key: LLM}` routes each call by
predicted quality and cost (`routing_core.cost_policy.CostAwarePolicy`); the chosen model answers, and the
payload, the events, the ledger and the metadata name it.

The router is `multi_fakes.KeywordQualityRouter` (models "big", "mid", "small"; learned costs 1e-2, 1e-3, 1e-4 USD
per call). With lam=10 the score is quality - 0.1 / 0.01 / 0.001, so the keyword in a question picks the model:
"proof" -> frontier (big), "summar" -> mini (mid), "translate" -> mini (with local predicted better than frontier,
for the fallback order), anything else -> local (small).
"""

from __future__ import annotations

import asyncio
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from li_fakes import ScriptedLLM, attached, events  # noqa: F401
from llama_index.core.agent.workflow import FunctionAgent, ReActAgent
from llama_index.core.base.llms.types import ChatMessage, CompletionResponse, LLMMetadata, MessageRole
from llama_index.core.callbacks import CallbackManager
from llama_index.core.llms import CustomLLM, MockLLM
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.llms.loading import RECOGNIZED_LLMS, load_llm
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from multi_fakes import KeywordQualityRouter

from llamaindex_routellm import (
    PAYLOAD_KEY,
    RoutedArgumentError,
    RoutedLLM,
    RoutingEventHandler,
    routed_turn,
)
from llamaindex_routellm.store import RouteStoreEventHandler
from routing_core.errors import UnknownModelError
from routing_core.policy import PAYLOAD_KEYS
from routing_core.registry import DEFAULT_MULTI_ROUTER

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect")

KEYS = ("frontier", "mini", "local")
NAMES = {"frontier": "big", "mini": "mid", "local": "small"}
RULES = {
    "proof": [0.95, 0.5, 0.2],
    "summar": [0.85, 0.8, 0.3],
    "translate": [0.5, 0.8, 0.7],
}
DEFAULT_Q = [0.6, 0.55, 0.55]
HARD = "Write a proof that there are infinitely many primes."
MEDIUM = "Please summarise the plot of Hamlet."
EASY = "What is 2 + 2?"
QUESTIONS = [(HARD, "frontier"), (MEDIUM, "mini"), (EASY, "local")]


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


TOOLS = [FunctionTool.from_defaults(add), FunctionTool.from_defaults(multiply)]


def plan(question: str, tools: Any) -> list[tuple[str, dict]]:
    return (
        [("add", {"a": 2, "b": 3}), ("multiply", {"a": 4, "b": 5})] if "compute" in question.lower() else []
    )


class ProviderDown(RuntimeError):
    """A scripted provider failure."""


def router() -> KeywordQualityRouter:
    return KeywordQualityRouter(rules=RULES, default=DEFAULT_Q)


def three(errors: dict[str, BaseException] | None = None, **llm_kwargs: Any) -> dict[str, ScriptedLLM]:
    return {k: ScriptedLLM(model_name=NAMES[k], error=(errors or {}).get(k), **llm_kwargs) for k in KEYS}


def routed(
    models: dict[str, Any] | None = None, r: Any = None, **kwargs: Any
) -> tuple[RoutedLLM, dict[str, Any], Any]:
    models = models if models is not None else three()
    r = r if r is not None else router()
    if not any(k in kwargs for k in ("lam", "margin", "target_cost", "target_quality")):
        kwargs["lam"] = 10.0
    return RoutedLLM(models=models, router=r, **kwargs), models, r


def user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role=MessageRole.USER, content=text)]


def asked(models: dict[str, ScriptedLLM]) -> dict[str, int]:
    return {k: len(m.calls) for k, m in models.items()}


def only(models: dict[str, ScriptedLLM], key: str) -> bool:
    """Only `key` was called (at least once)."""
    return all((len(m.calls) > 0) == (k == key) for k, m in models.items())


# -- construction --------------------------------------------------------------------------------------------


def test_three_models_route_by_quality_and_cost_and_the_chosen_model_answers(events) -> None:
    llm, models, r = routed()
    for question, key in QUESTIONS:
        for m in models.values():
            m.reset_calls()
        response = llm.chat(user(question))
        assert response.message.content == f"[{NAMES[key]}] reply to: {question}"
        assert only(models, key)
        payload = response.additional_kwargs[PAYLOAD_KEY]
        assert (
            payload["side"] == key and payload["model_name"] == NAMES[key] and payload["reason"] == "router"
        )
        assert list(payload)[: len(PAYLOAD_KEYS)] == list(PAYLOAD_KEYS)
        expected_q = next((v for k, v in RULES.items() if k in question), DEFAULT_Q)
        assert payload["qualities"] == dict(zip(KEYS, expected_q, strict=True))
        assert payload["costs"] == pytest.approx({"frontier": 1e-2, "mini": 1e-3, "local": 1e-4})
        assert payload["lambda"] == 10.0 and payload["margin"] is None
        assert payload["threshold"] is None and payload["win_rate"] is None
    assert [d.side for d in events.decisions] == [k for _, k in QUESTIONS]
    assert [e.side for e in events.ends] == [k for _, k in QUESTIONS]
    assert [d.model for d in events.decisions] == [NAMES[k] for _, k in QUESTIONS]
    assert r.calls == [[q] for q, _ in QUESTIONS]  # one router call per question


def test_the_knob_moves_the_choice() -> None:
    best, *_ = routed(lam=0.0)  # best predicted quality, whatever it costs
    assert {best.route(q).side for q, _ in QUESTIONS} == {"frontier"}
    cheap, *_ = routed(lam=1e6)
    assert {cheap.route(q).side for q, _ in QUESTIONS} == {"local"}
    within, *_ = routed(margin=0.1)  # the cheapest within 0.1 of the best
    assert [within.route(q).side for q, _ in QUESTIONS] == ["frontier", "mini", "local"]
    assert within.route(EASY).to_payload()["margin"] == 0.1 and within.lam is None


def test_target_cost_calibrates_lambda_on_the_reference_sample_and_keeps_it() -> None:
    r = router()
    r.reference_quality = np.array([RULES["proof"], RULES["summar"], DEFAULT_Q] * 10, dtype=np.float32)
    r.reference_tokens = np.full(30, 12.0, dtype=np.float32)
    llm, *_ = routed(r=r, target_cost=2e-4)
    assert llm.target_cost == 2e-4 and llm.lam is not None and llm.lam > 0
    assert llm.policy.lam == llm.lam
    payload = llm.route(HARD).to_payload()
    assert payload["lambda"] == llm.lam
    # on the reference mix the mean cost per call is at most the target
    sides = [llm.route(q).side for q, _ in QUESTIONS]
    assert np.mean([{"frontier": 1e-2, "mini": 1e-3, "local": 1e-4}[s] for s in sides]) <= 2e-4


def test_metadata_holds_for_every_model() -> None:
    models = {
        "frontier": ScriptedLLM(model_name="big", context_window=128000, num_output=4096),
        "mini": ScriptedLLM(model_name="mid", context_window=16000, num_output=1024),
        "local": ScriptedLLM(model_name="small", context_window=32000, num_output=-1),
    }
    llm, *_ = routed(models)
    md = llm.metadata
    assert md.context_window == 16000 and md.num_output == 1024
    assert md.is_function_calling_model is True and md.is_chat_model is True
    assert md.model_name == "routellm[keyword_quality](big|mid|small)"
    models["local"].is_function_calling_model = False
    models["mini"].is_chat_model = False
    md = llm.metadata
    assert md.is_function_calling_model is False and md.is_chat_model is False
    assert llm.sides == KEYS and llm.llm_for("local") is models["local"]
    assert repr(llm) == (
        "RoutedLLM(models={'frontier': 'big', 'mini': 'mid', 'local': 'small'}, router='keyword_quality', lam=10.0)"
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"strong": MockLLM()}, ValueError, "either strong= and weak=.*or models="),
        ({"threshold": 0.5}, ValueError, "threshold= belongs to the two-model form"),
        ({"strong_fraction": 0.5}, ValueError, "strong_fraction= belongs to the two-model form"),
        ({"strong_kwargs": {"seed": 1}}, ValueError, r"strong_kwargs=.*model_kwargs=\{key"),
        ({"model_kwargs": {"nope": {}}}, ValueError, "model_kwargs names 'nope'"),
        ({"model_kwargs": {"local": {"routellm_model": "x"}}}, ValueError, "routing argument"),
        ({"no_text_side": "strong"}, ValueError, "no_text_side must be one of 'frontier', 'mini', 'local'"),
        ({"fallback": ["mini", "nope"]}, ValueError, "fallback names 'nope'"),
        ({"lam": 1.0, "margin": 0.1}, ValueError, "exactly one of lam"),
        ({"lam": -1.0}, ValueError, "lam must be a finite number >= 0"),
    ],
)
def test_bad_n_model_options_fail_at_construction(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        routed(**kwargs)


def test_construction_errors() -> None:
    with pytest.raises(ValueError, match="at least two"):
        RoutedLLM(models={"only": ScriptedLLM(model_name="big")}, router=router(), lam=1.0)
    with pytest.raises(TypeError, match=r"models\['b'\] must be a llama_index LLM"):
        RoutedLLM(models={"a": ScriptedLLM(model_name="big"), "b": "gpt-4o"}, router=router(), lam=1.0)
    with pytest.raises(ValueError, match="needs exactly one of lam"):
        RoutedLLM(models=three(), router=router())
    with pytest.raises(TypeError, match="needs strong= and weak="):
        RoutedLLM(strong=MockLLM(), threshold=0.5)
    # the N-model options are refused by the two-model form
    for name, value in (
        ("lam", 1.0),
        ("margin", 0.1),
        ("model_kwargs", {"strong": {}}),
        ("costs", {"x": 1.0}),
    ):
        with pytest.raises(ValueError, match=f"{name}= belongs to the N-model form"):
            RoutedLLM(strong=MockLLM(), weak=MockLLM(), router="random", threshold=0.5, **{name: value})
    # a two-model router cannot score many models
    with pytest.raises(TypeError, match="needs a multi-model router"):
        RoutedLLM(models=three(), router="random", lam=1.0)


def test_a_model_the_router_does_not_know_is_a_clear_error_or_placed_by_model_map() -> None:
    models = {**three(), "local": ScriptedLLM(model_name="my-llama")}
    with pytest.raises(
        UnknownModelError, match=r"'my-llama' is not one this router knows; known models: big, mid"
    ):
        routed(models)
    llm, *_ = routed(models, model_map={"my-llama": "small"})
    assert llm.route(EASY).side == "local" and llm.route(EASY).model == "my-llama"
    llm, *_ = routed(models, model_map={"local": "small"})  # by key too
    assert llm.chat(user(EASY)).message.content.startswith("[my-llama]")


def test_costs_and_prices_price_the_calls() -> None:
    llm, *_ = routed(costs={"frontier": 0.0})  # a free frontier model always wins
    assert {llm.route(q).side for q, _ in QUESTIONS} == {"frontier"}
    llm, *_ = routed(prices={"big": (0.0, 0.0)})  # by price table (name, USD per 1M tokens)
    assert llm.route(EASY).side == "frontier" and llm.route(EASY).costs["frontier"] == 0.0
    with pytest.raises(ValueError, match="names 'nope', which is not one routed model"):
        routed(costs={"nope": 1.0})


def test_the_default_router_is_the_bundled_multi_model_router(monkeypatch: pytest.MonkeyPatch) -> None:
    import llamaindex_routellm.base as base

    seen: list[Any] = []

    def fake_load(name: Any, **kw: Any) -> Any:
        seen.append(name)
        return router()

    monkeypatch.setattr(base, "load_router", fake_load)
    llm = RoutedLLM(models=three(), lam=10.0)
    assert seen == [DEFAULT_MULTI_ROUTER] and llm.router == DEFAULT_MULTI_ROUTER
    RoutedLLM(strong=MockLLM(), weak=MockLLM(), threshold=0.5)
    assert seen[-1] == base.DEFAULT_ROUTER  # the two-model default is unchanged


# -- every call path ---------------------------------------------------------------------------------------


def _sync(llm: RoutedLLM, method: str, question: str) -> Any:
    if method == "chat":
        return llm.chat(user(question))
    if method == "stream_chat":
        return list(llm.stream_chat(user(question)))[-1]
    if method == "complete":
        return llm.complete(question)
    return list(llm.stream_complete(question))[-1]


async def _async(llm: RoutedLLM, method: str, question: str) -> Any:
    if method == "achat":
        return await llm.achat(user(question))
    if method == "astream_chat":
        return [c async for c in await llm.astream_chat(user(question))][-1]
    if method == "acomplete":
        return await llm.acomplete(question)
    return [c async for c in await llm.astream_complete(question)][-1]


def _text(response: Any) -> str:
    return str(getattr(response, "text", None) or response.message.content)


@pytest.mark.parametrize(("question", "key"), QUESTIONS)
@pytest.mark.parametrize("method", ["chat", "stream_chat", "complete", "stream_complete"])
def test_sync_call_paths(events, method: str, question: str, key: str) -> None:
    llm, models, _ = routed(route_per="call")
    last = _sync(llm, method, question)
    assert _text(last).startswith(f"[{NAMES[key]}]") and only(models, key)
    assert last.additional_kwargs[PAYLOAD_KEY]["side"] == key
    (decision,) = events.decisions
    (end,) = events.ends
    assert decision.side == end.side == key and decision.call == end.call == method
    assert decision.payload == last.additional_kwargs[PAYLOAD_KEY]
    assert decision.models == end.models == NAMES and end.status == "ok" and end.output_tokens > 0
    assert decision.qualities is not None and decision.lam == 10.0


@pytest.mark.parametrize(("question", "key"), QUESTIONS)
@pytest.mark.parametrize("method", ["achat", "astream_chat", "acomplete", "astream_complete"])
async def test_async_call_paths(events, method: str, question: str, key: str) -> None:
    llm, models, _ = routed(route_per="call")
    last = await _async(llm, method, question)
    assert _text(last).startswith(f"[{NAMES[key]}]") and only(models, key)
    assert last.additional_kwargs[PAYLOAD_KEY]["side"] == key
    assert [d.side for d in events.decisions] == [e.side for e in events.ends] == [key]


QA = PromptTemplate("Context: {context_str}\nQuestion: {query_str}\nAnswer:")
CONTEXT = "A proof of a theorem. " * 20  # would route to frontier if the stuffed prompt were routed


@pytest.mark.parametrize(("question", "key"), QUESTIONS)
async def test_predict_and_stream_route_on_the_question(events, question: str, key: str) -> None:
    llm, models, r = routed(route_per="call")
    assert llm.predict(QA, context_str=CONTEXT, query_str=question).startswith(f"[{NAMES[key]}]")
    assert "".join(llm.stream(QA, context_str=CONTEXT, query_str=question)).startswith(f"[{NAMES[key]}]")
    assert (await llm.apredict(QA, context_str=CONTEXT, query_str=question)).startswith(f"[{NAMES[key]}]")
    tokens = [t async for t in await llm.astream(QA, context_str=CONTEXT, query_str=question)]
    assert "".join(tokens).startswith(f"[{NAMES[key]}]")
    assert only(models, key) and r.calls == [[question]] * 4
    assert {d.source for d in events.decisions} == {"query_str"} and {d.side for d in events.decisions} == {
        key
    }


def test_no_text_goes_to_the_first_model_or_no_text_side() -> None:
    llm, models, r = routed()
    assert (
        llm.chat([ChatMessage(role=MessageRole.USER, content="   ")]).additional_kwargs[PAYLOAD_KEY]["side"]
        == "frontier"
    )
    llm, models, r = routed(no_text_side="local")
    payload = llm.complete("").additional_kwargs[PAYLOAD_KEY]
    assert payload["side"] == "local" and payload["reason"] == "no_text" and "qualities" not in payload
    assert r.calls == []


def test_forcing_a_model_per_call_by_key_or_name(events) -> None:
    llm, models, r = routed()
    assert llm.chat(user(HARD), routellm_model="local").message.content.startswith("[small]")
    assert llm.complete(HARD, routellm_model="mid").additional_kwargs[PAYLOAD_KEY]["side"] == "mini"
    assert llm.complete(HARD, routellm_model="auto").additional_kwargs[PAYLOAD_KEY]["side"] == "frontier"
    assert [d.reason for d in events.decisions] == ["forced", "forced", "router"]
    assert r.calls == [[HARD]]  # forced calls never consult the router
    with pytest.raises(
        ValueError, match="cannot force the routed model to 'strong'.*'frontier', 'mini', 'local'"
    ):
        llm.complete(HARD, routellm_model="strong")


# -- fallback -------------------------------------------------------------------------------------------------


def test_fallback_other_tries_the_next_best_predicted_quality(events) -> None:
    down = ProviderDown("mini is down")
    llm, models, _ = routed(three({"mini": down}), fallback="other")
    # "translate": mini chosen (0.8); the others by predicted quality: local (0.7) before frontier (0.5)
    response = llm.chat(user("Please translate this sentence."))
    assert response.message.content.startswith("[small]")
    payload = response.additional_kwargs[PAYLOAD_KEY]
    assert payload["side"] == "local" and payload["model_name"] == "small"
    assert payload["fallback_from"] == "mini" and payload["fallback_error"] == "ProviderDown"
    assert [(d.side, d.fallback_from) for d in events.decisions] == [("mini", None), ("local", "mini")]
    assert [e.status for e in events.ends] == ["error", "ok"]
    assert not models["frontier"].calls


def test_fallback_goes_down_the_order_until_one_answers_and_a_list_restricts_it() -> None:
    errors = {"mini": ProviderDown("mini"), "local": ProviderDown("local")}
    llm, models, _ = routed(three(errors), fallback="other")
    assert llm.complete("Please translate it.").text.startswith("[big]")  # mini, local, then frontier
    assert [len(m.calls) for m in models.values()] == [1, 0, 0]  # ScriptedLLM records answered calls only
    # a list names the models a fallback may use (tried best predicted quality first, the policy's order)
    llm, models, _ = routed(three({"mini": ProviderDown("mini")}), fallback=["frontier"])
    assert llm.complete("Please translate it.").text.startswith("[big]")
    llm, models, _ = routed(three(errors), fallback=["local"])
    with pytest.raises(ProviderDown, match="mini") as info:
        llm.complete("Please translate it.")
    assert any("fallback failed too" in n for n in info.value.__notes__)
    assert not models["frontier"].calls
    llm, models, _ = routed(three({"mini": ProviderDown("mini")}))  # off by default: the error, unchanged
    with pytest.raises(ProviderDown, match="mini"):
        llm.complete("Please translate it.")


async def test_streams_fall_back_before_their_first_chunk() -> None:
    llm, models, _ = routed(three({"frontier": ProviderDown("x")}), fallback="other")
    chunks = list(llm.stream_chat(user(HARD)))
    assert chunks[-1].additional_kwargs[PAYLOAD_KEY]["side"] == "mini"  # 0.5 beats local's 0.2
    achunks = [c async for c in await llm.astream_complete(HARD)]
    assert achunks[-1].additional_kwargs[PAYLOAD_KEY]["fallback_from"] == "frontier"


# -- per-model kwargs ----------------------------------------------------------------------------------------


def test_model_kwargs_reach_only_their_model_and_call_kwargs_win() -> None:
    llm, models, _ = routed(model_kwargs={"local": {"seed": 7, "top_k": 3}, "mini": {"temperature": 0.1}})
    llm.complete(EASY)
    llm.complete(MEDIUM)
    llm.complete(HARD)
    llm.complete(EASY, seed=8)
    assert (
        models["local"].calls[0]["kwargs"]["seed"] == 7 and models["local"].calls[0]["kwargs"]["top_k"] == 3
    )
    assert models["local"].calls[1]["kwargs"]["seed"] == 8
    assert (
        models["mini"].calls[0]["kwargs"]["temperature"] == 0.1
        and "seed" not in models["mini"].calls[0]["kwargs"]
    )
    assert "seed" not in models["frontier"].calls[0]["kwargs"]


class _Strict(ScriptedLLM):
    """Refuses any extra keyword argument, as a strict client would."""

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        if kwargs:
            raise TypeError(f"complete() got an unexpected keyword argument '{next(iter(kwargs))}'")
        return super().complete(prompt, formatted=formatted)


def test_an_argument_the_chosen_model_refuses_names_its_key_and_never_falls_back() -> None:
    models = {**three(), "local": _Strict(model_name="small")}
    llm, *_ = routed(models, model_kwargs={"local": {"seed": 7}}, fallback="other")
    with pytest.raises(
        RoutedArgumentError, match=r"'local' model \(small, _Strict\).*model_kwargs\['local'\]"
    ) as e:
        llm.complete(EASY)
    assert e.value.side == "local" and e.value.model_name == "small" and e.value.argument == "seed"
    assert not models["frontier"].calls and not models["mini"].calls


# -- events, ledger, store ------------------------------------------------------------------------------------


def test_the_event_handler_keeps_a_ledger_per_model() -> None:
    models = {
        "gpt-4o": ScriptedLLM(model_name="gpt-4o"),
        "mini": ScriptedLLM(model_name="gpt-4o-mini"),
        "local": ScriptedLLM(model_name="llama-3.1-8b-instruct"),
    }
    r = KeywordQualityRouter(
        models=("gpt-4o", "gpt-4o-mini", "llama-3.1-8b-instruct"), rules=RULES, default=DEFAULT_Q
    )
    llm = RoutedLLM(
        models=models,
        router=r,
        costs={"gpt-4o": 1e-2, "mini": 1e-3, "local": 1e-4},
        lam=10.0,
        fallback="other",
    )
    with attached(RoutingEventHandler()) as handler:
        llm.chat(user(HARD))
        llm.chat(user(MEDIUM))
        llm.chat(user(EASY))
        llm.chat(user(EASY))
        llm.complete(HARD, routellm_model="local")
        models["mini"].error = ProviderDown("x")
        llm.complete(MEDIUM)  # mini fails, gpt-4o (0.85) answers
    s = handler.summary()
    assert list(s.sides) == ["gpt-4o", "mini", "local"]  # the model keys, no strong/weak
    assert (s.sides["gpt-4o"].calls, s.sides["mini"].calls, s.sides["local"].calls) == (2, 2, 3)
    assert s.sides["mini"].errors == 1
    assert s.sides["local"].model_names == {"llama-3.1-8b-instruct": 3}
    assert s.sides["gpt-4o"].model_names == {"gpt-4o": 2}
    assert s.calls == 7 and s.forced_calls == 1 and s.unpriced_calls == 0
    # savings against always calling the first model (gpt-4o), at the default list prices
    assert s.strong_model == "gpt-4o" and s.saved is not None and s.saved > 0
    assert "llama-3.1-8b-instruct" in str(s)


def test_the_savings_baseline_can_be_another_model() -> None:
    models = {
        "gpt-4o": ScriptedLLM(model_name="gpt-4o"),
        "mini": ScriptedLLM(model_name="gpt-4o-mini"),
        "local": ScriptedLLM(model_name="llama-3.1-8b-instruct"),
    }
    r = KeywordQualityRouter(
        models=("gpt-4o", "gpt-4o-mini", "llama-3.1-8b-instruct"), rules=RULES, default=DEFAULT_Q
    )
    llm = RoutedLLM(models=models, router=r, costs={"gpt-4o": 1e-2, "mini": 1e-3, "local": 1e-4}, lam=10.0)
    with attached(RoutingEventHandler(strong_model="gpt-4o-mini")) as handler:
        llm.chat(user(HARD))
        llm.chat(user(EASY))
    s = handler.summary()
    assert s.strong_model == "gpt-4o-mini" and s.saved is not None and s.saved < 0  # gpt-4o costs more


def test_a_two_model_handler_is_unchanged_by_the_n_model_form() -> None:
    with attached(RoutingEventHandler()) as handler:
        pass
    assert list(handler.summary().sides) == ["strong", "weak"]


def test_the_route_store_records_the_key_and_model(tmp_path: Path) -> None:
    handler = RouteStoreEventHandler.from_url(tmp_path / "multi.db", record_text=True)
    llm, *_ = routed()
    with attached(handler):
        for question, _ in QUESTIONS:
            llm.chat(user(question))
    assert handler.store.flush(30)
    rows = sorted(handler.store.decisions(), key=lambda row: row["prompt"])
    expected = sorted(QUESTIONS)
    assert [(row["prompt"], row["side"], row["model"]) for row in rows] == [
        (q, k, NAMES[k]) for q, k in expected
    ]
    assert all(row["status"] == "ok" and row["strong_model"] == "big" for row in rows)
    handler.store.close()


# -- tools and agents ------------------------------------------------------------------------------------------


def test_chat_with_tools_and_parsing_use_the_chosen_model() -> None:
    llm, models, _ = routed(three(tool_caller=plan))
    response = llm.chat_with_tools(TOOLS, user_msg="Compute 2 + 3 and 4 * 5, summarise.")
    assert response.additional_kwargs[PAYLOAD_KEY]["side"] == "mini"
    assert [c.tool_name for c in llm.get_tool_calls_from_response(response)] == ["add", "multiply"]
    assert only(models, "mini")
    result = llm.predict_and_call(
        TOOLS, user_msg="Compute 2 + 3 and 4 * 5 in a proof.", allow_parallel_tool_calls=True
    )
    assert result.metadata[PAYLOAD_KEY]["side"] == "frontier"
    assert str(result.response) == "5\n\n20"


def test_tools_on_a_model_without_function_calling_is_a_clear_error() -> None:
    models = three(tool_caller=plan)
    models["local"].is_function_calling_model = False
    llm, *_ = routed(models)
    with pytest.raises(
        ValueError, match=r"the 'local' model \(small, ScriptedLLM\) does not support function"
    ):
        llm.chat_with_tools(TOOLS, user_msg="Compute 2 + 3")


@pytest.mark.parametrize("streaming", [True, False])
@pytest.mark.parametrize(
    ("question", "key"),
    [("Compute 2 + 3 and 4 * 5 for a proof.", "frontier"), ("Compute 2 + 3 and 4 * 5.", "local")],
)
async def test_function_agent_over_three_models_one_decision_per_turn(
    events, streaming, question, key
) -> None:
    llm, models, r = routed(three(tool_caller=plan))
    agent = FunctionAgent(tools=TOOLS, llm=llm, system_prompt="You are a calculator.", streaming=streaming)
    result = await agent.run(user_msg=question)
    text = str(result.response.content)
    assert text.startswith(f"[{NAMES[key]}]") and "5" in text and "20" in text
    assert [c.tool_output.raw_output for c in result.tool_calls] == [5, 20]
    assert only(models, key)  # every step on the chosen model; the two others never asked anything
    assert r.calls == [[question]]  # one router call for the whole run
    assert len(events.decisions) == len(events.ends) == 2
    assert {d.side for d in events.decisions} == {key} and len({d.turn_id for d in events.decisions}) == 1
    assert {d.source for d in events.decisions} == {"turn_message"}


async def test_function_agent_with_a_model_lacking_function_calling_is_our_error() -> None:
    models = three(tool_caller=plan)
    models["mini"].is_function_calling_model = False
    llm, *_ = routed(models)
    agent = FunctionAgent(tools=TOOLS, llm=llm)
    with pytest.raises(
        ValueError, match=r"the 'mini' model \(mid, ScriptedLLM\) does not support function calling"
    ):
        await agent.run(user_msg="Compute 2 + 3")
    assert not any(m.calls for m in models.values())


async def test_function_agent_fallback_stays_on_the_model_that_answered(events) -> None:
    llm, models, _ = routed(three({"frontier": ProviderDown("x")}, tool_caller=plan), fallback="other")
    agent = FunctionAgent(tools=TOOLS, llm=llm, streaming=False)
    result = await agent.run(user_msg="Compute 2 + 3 and 4 * 5 in a proof.")
    assert str(result.response.content).startswith("[mid]")
    assert [(d.side, d.fallback_from) for d in events.decisions] == [
        ("frontier", None),
        ("mini", "frontier"),
        ("mini", "frontier"),
    ]
    assert not models["local"].calls


def react_responder(question: str) -> str:
    if "Observation" in question:
        return "Thought: I can answer without using any more tools.\nAnswer: 5"
    return 'Thought: I need to add.\nAction: add\nAction Input: {"a": 2, "b": 3}'


async def test_react_agent_over_three_models_one_decision_per_turn(events) -> None:
    models = {
        k: ScriptedLLM(model_name=NAMES[k], responder=react_responder, is_function_calling_model=False)
        for k in KEYS
    }
    llm, models, r = routed(models)
    agent = ReActAgent(tools=TOOLS, llm=llm, streaming=False)
    question = "Please summarise: what is 2 + 3?"
    result = await agent.run(user_msg=question)
    assert "5" in str(result.response.content)
    assert only(models, "mini") and len(models["mini"].calls) == 2
    assert r.calls == [[question]]  # the observation step was not routed on its own
    assert {d.side for d in events.decisions} == {"mini"} and len(events.decisions) == 2


def test_routed_turn_and_chat_engine_turns_share_one_decision() -> None:
    from llama_index.core.chat_engine import SimpleChatEngine

    llm, models, r = routed()
    with routed_turn(HARD):
        llm.complete("Observation: 5")
        llm.complete("tiny")
    assert only(models, "frontier") and r.calls == [[HARD]]
    engine = SimpleChatEngine.from_defaults(llm=llm)
    assert str(engine.chat(MEDIUM)).startswith("[mid]")


# -- structured output -----------------------------------------------------------------------------------------


class _Structured(ScriptedLLM):
    """Records its own structured_predict (the native path of the chosen model)."""

    def structured_predict(
        self, output_cls: Any, prompt: Any, llm_kwargs: Any = None, **prompt_args: Any
    ) -> Any:
        self._calls.append(
            {
                "method": "structured_predict",
                "question": prompt_args.get("query_str"),
                "tools": [],
                "kwargs": dict(llm_kwargs or {}),
            }
        )
        return output_cls(city=self.model_name, population=1)

    async def astructured_predict(
        self, output_cls: Any, prompt: Any, llm_kwargs: Any = None, **prompt_args: Any
    ) -> Any:
        return self.structured_predict(output_cls, prompt, llm_kwargs, **prompt_args)


async def test_structured_output_is_the_chosen_models_own(events) -> None:
    from pydantic import BaseModel

    class Capital(BaseModel):
        city: str
        population: int

    models = {k: _Structured(model_name=NAMES[k]) for k in KEYS}
    llm, models, _ = routed(models, model_kwargs={"mini": {"seed": 3}})
    prompt = PromptTemplate("Context: {context_str}\nQuestion: {query_str}")
    out = llm.structured_predict(Capital, prompt, context_str=CONTEXT, query_str=MEDIUM)
    assert out == Capital(city="mid", population=1)
    assert models["mini"].calls[0]["kwargs"] == {"seed": 3}
    out = await llm.astructured_predict(Capital, prompt, context_str=CONTEXT, query_str=EASY)
    assert out.city == "small"
    assert [(d.call, d.side) for d in events.decisions] == [
        ("structured_predict", "mini"),
        ("astructured_predict", "local"),
    ]
    assert events.ends[0].output_tokens > 0


# -- callback manager, serialisation ------------------------------------------------------------------------


def test_the_callback_manager_is_shared_with_every_model() -> None:
    cm = CallbackManager([])
    llm, models, _ = routed(callback_manager=cm)
    assert all(m.callback_manager is cm for m in models.values())
    other = CallbackManager([])
    llm.callback_manager = other
    assert all(m.callback_manager is other for m in models.values())


class NamedLLM(CustomLLM):
    """A picklable, dict-serialisable offline LLM with a model name (MockLLM's is always "unknown")."""

    model_name: str = "named"

    @classmethod
    def class_name(cls) -> str:
        return "NamedLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.model_name, is_chat_model=False)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=f"[{self.model_name}] {prompt}")

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        yield CompletionResponse(text=f"[{self.model_name}] {prompt}", delta=f"[{self.model_name}] {prompt}")


class _PicklableRouter(KeywordQualityRouter):
    """The scripted router, registered by name for these tests (so to_dict/load_llm rebuild it)."""


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """NamedLLM known to load_llm, the scripted router loadable by name; the router kwargs to use."""
    from routing_core import registry

    monkeypatch.setitem(RECOGNIZED_LLMS, "NamedLLM", NamedLLM)
    monkeypatch.setitem(registry._REGISTRY, "kw_quality", f"{_PicklableRouter.__module__}:_PicklableRouter")
    return {"rules": RULES, "default": DEFAULT_Q}


OPTIONS: dict[str, Any] = {
    "fallback": ["local", "mini"],
    "fallback_on": (ProviderDown, ConnectionError),
    "route_per": "call",
    "model_kwargs": {"local": {"seed": 7}},
    "no_text_side": "mini",
    "model_map": {"other-small": "small"},
    "costs": {"frontier": 0.02},
    "prices": {"mid": (0.5, 1.5)},
    "expected_output_tokens": 100,
    "route_template_vars": ("question", "query_str"),
}
FIELDS = (
    "router",
    "router_kwargs",
    "lam",
    "margin",
    "target_cost",
    "target_quality",
    "model_map",
    "costs",
    "prices",
    "default_prices",
    "expected_output_tokens",
    "fallback",
    "fallback_on",
    "route_per",
    "model_kwargs",
    "no_text_side",
    "route_template_vars",
    "threshold",
    "strong",
    "weak",
)


def named() -> dict[str, NamedLLM]:
    return {k: NamedLLM(model_name=NAMES[k]) for k in KEYS}


def _same(a: RoutedLLM, b: RoutedLLM) -> None:
    for name in FIELDS:
        assert getattr(a, name) == getattr(b, name), name
    assert a.models is not None and b.models is not None
    assert list(b.models) == list(a.models) and b._fallback_sides == a._fallback_sides
    assert b._fallback_types == a._fallback_types
    assert [m.metadata.model_name for m in b.models.values()] == list(NAMES.values())
    for q in [q for q, _ in QUESTIONS] + ["Please translate it.", ""]:
        pa, pb = a.route(q).to_payload(), b.route(q).to_payload()
        assert pa == pb, q
    assert b.complete(EASY).text == a.complete(EASY).text == f"[small] {EASY}"


@pytest.mark.parametrize("by_name", [True, False])
def test_pickle_round_trips_the_n_model_form(registered: dict[str, Any], by_name: bool) -> None:
    r: Any = "kw_quality" if by_name else _PicklableRouter(**registered)
    kw = {"router_kwargs": registered} if by_name else {}
    llm = RoutedLLM(models=named(), router=r, lam=10.0, **kw, **OPTIONS)
    again = pickle.loads(pickle.dumps(llm))
    assert isinstance(again, RoutedLLM) and type(again.get_router()) is _PicklableRouter
    _same(llm, again)


def test_to_dict_from_dict_and_load_llm_round_trip_the_n_model_form(registered: dict[str, Any]) -> None:
    llm = RoutedLLM(models=named(), router="kw_quality", router_kwargs=registered, margin=0.1, **OPTIONS)
    data = llm.to_dict()
    assert data["class_name"] == "RoutedLLM" and data["strong"] is None and data["threshold"] is None
    assert list(data["models"]) == list(KEYS) and data["models"]["local"]["class_name"] == "NamedLLM"
    assert data["margin"] == 0.1 and data["lam"] is None and data["prices"] == {"mid": (0.5, 1.5)}
    assert data["fallback_on"] == [f"{ProviderDown.__module__}.ProviderDown", "builtins.ConnectionError"]
    json.dumps(data)
    _same(llm, RoutedLLM.from_dict(data))
    _same(llm, RoutedLLM.from_json(llm.to_json()))
    _same(llm, load_llm(data))  # how LlamaIndex components rebuild their LLM


def test_from_dict_asks_again_for_models_it_cannot_rebuild_and_merges_the_given_ones(
    registered: dict[str, Any],
) -> None:
    models = {**named(), "local": ScriptedLLM(model_name="small")}
    llm = RoutedLLM(models=models, router="kw_quality", router_kwargs=registered, lam=10.0)
    data = llm.to_dict()
    with pytest.raises(ValueError, match=r"cannot rebuild the model 'local'.*models=\{'local': <LLM>\}"):
        RoutedLLM.from_dict(data)
    mine = ScriptedLLM(model_name="small")
    again = RoutedLLM.from_dict(data, models={"local": mine})
    assert again.models is not None and list(again.models) == list(KEYS)  # the stored order
    assert again.models["local"] is mine and isinstance(again.models["frontier"], NamedLLM)
    assert again.chat(user(EASY)).message.content.startswith("[small] reply to")


@pytest.mark.parametrize("target", ["target_cost", "target_quality"])
def test_a_calibrated_lambda_and_its_target_survive_pickle_and_to_dict(
    registered: dict[str, Any], target: str
) -> None:
    r = _PicklableRouter(**registered)
    r.reference_quality = np.array([RULES["proof"], RULES["summar"], DEFAULT_Q] * 5, dtype=np.float32)
    r.reference_tokens = np.full(15, 12.0, dtype=np.float32)
    value = 1e-3 if target == "target_cost" else 0.6
    llm = RoutedLLM(models=named(), router=r, **{target: value})
    assert llm.lam is not None and getattr(llm, target) == value
    again = pickle.loads(pickle.dumps(llm))
    assert again.lam == llm.lam and getattr(again, target) == value
    # from a dict the stored lambda is used as is: the rebuilt router needs no reference sample
    rebuilt = RoutedLLM.from_dict(llm.to_dict(), router=_PicklableRouter(**registered))
    assert rebuilt.lam == llm.lam and getattr(rebuilt, target) == value


# -- concurrency ------------------------------------------------------------------------------------------------


async def test_concurrent_async_calls_each_get_their_own_model() -> None:
    llm, models, _ = routed(route_per="call")
    questions = [QUESTIONS[i % 3] for i in range(60)]
    responses = await asyncio.gather(*(llm.achat(user(q)) for q, _ in questions))
    assert [r.additional_kwargs[PAYLOAD_KEY]["side"] for r in responses] == [k for _, k in questions]
    assert asked(models) == {"frontier": 20, "mini": 20, "local": 20}
