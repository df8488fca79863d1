"""`RoutedChatModel(models={...})`: routing among three chat models by predicted quality and cost, with scripted
fakes (two provider dialects) and the scripted multi-model router: the chosen model answers, and the metadata,
the routing event, the ledger, the store and tracing name it; every call path, tools, structured output,
forcing, fallback (next best predicted quality), per-model call arguments and the construction rules."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

import numpy as np
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage
from lc_fakes import FakeAnthropicChat, FakeOpenAIChat, KeywordRouter
from multi_fakes import KeywordQualityRouter
from pydantic import BaseModel, Field

from langchain_routellm import (
    METADATA_KEY,
    ROUTE_EVENT,
    RoutedChatModel,
    RoutingCallbackHandler,
    UnsupportedCallArgumentError,
)
from routing_core.cost_policy import CostAwarePolicy
from routing_core.errors import UnknownModelError
from routing_core.registry import DEFAULT_MULTI_ROUTER

KEYS = ("big", "mid", "small")
# Predicted quality of (big, mid, small) by keyword; costs are 1e-2, 1e-3, 1e-4 USD per call. With lam=10 the
# scores (quality - 10 * cost) pick big for "hard", mid for "medium" and small for "easy".
RULES = {"hard": [0.9, 0.5, 0.3], "medium": [0.8, 0.75, 0.3], "easy": [0.6, 0.55, 0.55]}
COSTS = {"big": 1e-2, "mid": 1e-3, "small": 1e-4}
PRICES = {"big": (10.0, 30.0), "mid": (1.0, 2.0), "small": (0.1, 0.2)}
CASES = [("a hard question", "big"), ("a medium question", "mid"), ("an easy question", "small")]
BROKEN = RuntimeError("provider down")


class Router(KeywordQualityRouter):
    """The scripted multi-model router, with a describe() that needs no saved state (tracing reads it)."""

    def describe(self) -> dict[str, Any]:
        return {"router": self.name, "models": list(self.models), "rules": sorted(self.rules)}


def fakes(**errors: Any) -> dict[str, Any]:
    """big and small speak the OpenAI dialect, mid the Anthropic one; `errors` sets `error` per key."""
    return {
        "big": FakeOpenAIChat(model_name="big", error=errors.get("big")),
        "mid": FakeAnthropicChat(model_name="mid", error=errors.get("mid")),
        "small": FakeOpenAIChat(model_name="small", error=errors.get("small")),
    }


def routed(**kw: Any) -> RoutedChatModel:
    opts: dict[str, Any] = {"models": fakes(), "router": Router(rules=RULES), "lam": 10.0, **kw}
    return RoutedChatModel(**opts)


def called(m: RoutedChatModel) -> list[str]:
    """The keys of the inner models that received a call, in key order."""
    return [k for k in m.sides if m.side_models(k)[0].calls]  # type: ignore[attr-defined]


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.starts: list[dict[str, Any]] = []
        self.records: list[dict[str, Any]] = []
        self.errors: list[BaseException] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.starts.append(kwargs.get("metadata") or {})

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        if name == ROUTE_EVENT:
            self.records.append(dict(data))

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.errors.append(error)


# ----------------------------------------------------------------------------------------------------------------
# the chosen model answers, and everything names it
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("prompt", "key"), CASES)
def test_invoke_routes_among_three_models(prompt: str, key: str) -> None:
    m = routed()
    rec, handler = Recorder(), RoutingCallbackHandler(prices=PRICES)
    answer = m.invoke(prompt, config={"callbacks": [rec, handler]})
    assert answer.content == f"{key} says hello. You said: {prompt}"
    assert called(m) == [key]  # only the chosen model was called
    record = answer.response_metadata[METADATA_KEY]
    assert record["side"] == key and record["model_name"] == key and record["reason"] == "router"
    assert record["qualities"] == dict(zip(KEYS, RULES[prompt.split()[1]], strict=True))
    assert record["costs"] == COSTS and record["lambda"] == 10.0 and record["margin"] is None
    assert record["win_rate"] is None and record["threshold"] is None
    assert record["text_preview"] == prompt and record["source"] == "last_user_message"
    assert rec.records == [record]  # the routing event carries the same record
    assert rec.starts[0]["ls_model_name"] == key  # tracing names the model that answered
    summary = handler.summary()
    assert set(summary.sides) == {key}  # the ledger is keyed by routing key, no empty strong/weak rows
    totals = summary.sides[key]
    assert totals.calls == 1 and totals.model_names == {key: 1} and totals.errors == 0
    assert totals.input_tokens == answer.usage_metadata["input_tokens"]  # type: ignore[index]
    assert totals.cost == pytest.approx(
        (totals.input_tokens * PRICES[key][0] + totals.output_tokens * PRICES[key][1]) / 1e6
    )


async def test_ainvoke_abatch_astream_route_among_three_models() -> None:
    m = routed()
    for prompt, key in CASES:
        answer = await m.ainvoke(prompt)
        assert answer.response_metadata[METADATA_KEY]["side"] == key and answer.content.startswith(key)
    answers = await m.abatch([p for p, _ in CASES])
    assert [a.response_metadata[METADATA_KEY]["side"] for a in answers] == [k for _, k in CASES]
    for prompt, key in CASES:
        chunks = [c async for c in m.astream(prompt)]
        assert [c for c in chunks if METADATA_KEY in c.response_metadata] == chunks[:1]
        assert chunks[0].response_metadata[METADATA_KEY]["side"] == key
        merged = sum(chunks[1:], chunks[0])
        assert (
            isinstance(merged, AIMessageChunk) and merged.content == f"{key} says hello. You said: {prompt}"
        )


def test_stream_and_batch_route_among_three_models() -> None:
    m = routed()
    answers = m.batch([p for p, _ in CASES])
    assert [a.response_metadata[METADATA_KEY]["model_name"] for a in answers] == [k for _, k in CASES]
    for prompt, key in CASES:
        handler = RoutingCallbackHandler()
        chunks = list(m.stream(prompt, config={"callbacks": [handler]}))
        assert len(chunks) > 1 and chunks[0].response_metadata[METADATA_KEY]["side"] == key
        assert sum(1 for c in chunks if METADATA_KEY in c.response_metadata) == 1
        assert "".join(str(c.content) for c in chunks) == f"{key} says hello. You said: {prompt}"
        assert handler.summary().sides[key].calls == 1
        stream_calls = m.side_models(key)[0].calls  # type: ignore[attr-defined]
        assert stream_calls[-1]["method"] == "_stream"


def test_streaming_invoke_and_astream_events_carry_the_key() -> None:
    import asyncio

    m = routed(streaming=True)
    assert m.invoke("a medium question").response_metadata[METADATA_KEY]["side"] == "mid"

    async def events() -> list[dict[str, Any]]:
        return [
            e["data"]
            async for e in m.astream_events("an easy question", version="v2")
            if e["event"] == "on_custom_event" and e["name"] == ROUTE_EVENT
        ]

    (data,) = asyncio.run(events())
    assert data["side"] == "small" and data["qualities"] == {"big": 0.6, "mid": 0.55, "small": 0.55}


def test_the_knobs_move_the_choice() -> None:
    prompt = "a medium question"  # qualities 0.8 / 0.75 / 0.3
    assert routed(lam=0.0).invoke(prompt).response_metadata[METADATA_KEY]["side"] == "big"
    assert routed(lam=1e4).invoke(prompt).response_metadata[METADATA_KEY]["side"] == "small"
    assert routed(lam=None, margin=0.1).invoke(prompt).response_metadata[METADATA_KEY]["side"] == "mid"
    assert routed(lam=None, margin=0.01).invoke(prompt).response_metadata[METADATA_KEY]["side"] == "big"
    record = routed(lam=None, margin=0.1).invoke(prompt).response_metadata[METADATA_KEY]
    assert record["margin"] == 0.1 and record["lambda"] is None


def test_target_cost_calibrates_lambda_on_the_reference_sample() -> None:
    router = Router(rules=RULES)
    router.reference_quality = np.array([RULES["hard"], RULES["medium"], RULES["easy"]] * 4)
    router.reference_tokens = np.full(12, 20.0)
    cheap = RoutedChatModel(models=fakes(), router=router, target_cost=2e-4)
    assert cheap.policy.lam is not None and cheap.policy.lam > 0  # type: ignore[attr-defined]
    assert cheap.invoke("a hard question").response_metadata[METADATA_KEY]["side"] == "small"
    rich = RoutedChatModel(models=fakes(), router=router, target_cost=1.0)
    assert rich.policy.lam == 0.0  # type: ignore[attr-defined]
    assert rich.invoke("an easy question").response_metadata[METADATA_KEY]["side"] == "big"
    with pytest.raises(ValueError, match="no reference sample"):
        RoutedChatModel(models=fakes(), router=Router(rules=RULES), target_quality=0.7)


def test_costs_and_prices_price_the_calls() -> None:
    # fixed costs override the router's own cost lines: small becomes the priciest, big the cheapest
    m = routed(costs={"big": 1e-4, "small": 1e-2, "mid": 1e-3})
    record = m.invoke("an easy question").response_metadata[METADATA_KEY]
    assert record["costs"] == {"big": 1e-4, "mid": 1e-3, "small": 1e-2} and record["side"] == "big"
    # a price table by model name: tokens x price
    priced = routed(prices=PRICES, expected_output_tokens=100)
    costs = priced.invoke("a hard question").response_metadata[METADATA_KEY]["costs"]
    assert costs["big"] > costs["mid"] > costs["small"] > 0
    assert costs["big"] == pytest.approx((3 * 10.0 + 100 * 30.0) / 1e6)  # "a hard question": 3 tokens


# ----------------------------------------------------------------------------------------------------------------
# forcing, no text
# ----------------------------------------------------------------------------------------------------------------


def test_forcing_a_model_per_call() -> None:
    m = routed()
    rec = Recorder()
    for how in ({"model": "small"}, {"routellm_model": "small"}):
        answer = m.invoke("a hard question", config={"callbacks": [rec]}, **how)
        record = answer.response_metadata[METADATA_KEY]
        assert record["side"] == "small" and record["reason"] == "forced" and record["source"] == "caller"
        assert "qualities" not in record  # the router was not consulted
    assert [s["ls_model_name"] for s in rec.starts] == ["small", "small"]
    by_name = RoutedChatModel(
        models={"a": FakeOpenAIChat(model_name="big"), "b": FakeAnthropicChat(model_name="mid")},
        router=Router(models=("big", "mid"), rules={}),
        lam=0.0,
    )
    assert by_name.invoke("x", model="mid").response_metadata[METADATA_KEY]["side"] == "b"  # a model name
    assert list(by_name.stream("x", model="b"))[0].response_metadata[METADATA_KEY]["model_name"] == "mid"
    with pytest.raises(ValueError, match="cannot force the routed model to 'gpt-9'.*'big'.*'mid'.*'small'"):
        m.invoke("x", model="gpt-9")
    assert routed().route([HumanMessage("a hard question")], model="mid").side == "mid"


def test_no_text_goes_to_the_no_text_model_without_the_router() -> None:
    router = Router(rules=RULES)
    m = routed(router=router)
    assert m.no_text_model == "big"  # default: the first model
    record = m.invoke([SystemMessage("only a system prompt")]).response_metadata[METADATA_KEY]
    assert record["side"] == "big" and record["reason"] == "no_text" and not router.calls
    other = routed(no_text_model="small")
    assert other.invoke([SystemMessage("s")]).response_metadata[METADATA_KEY]["side"] == "small"
    by_name = routed(no_text_model="mid")  # keys and names coincide here; a name resolves to its key
    assert by_name.no_text_model == "mid"
    with pytest.raises(ValueError, match="no_text_model must be one of the routed models"):
        routed(no_text_model="strong")


# ----------------------------------------------------------------------------------------------------------------
# tools and structured output, each model in its own dialect
# ----------------------------------------------------------------------------------------------------------------


class GetWeather(BaseModel):
    """Get the current weather in a given location."""

    location: str = Field(description="The city, e.g. Paris")


class Joke(BaseModel):
    """Joke to tell user."""

    setup: str = Field(description="question to set up a joke")
    punchline: str = Field(description="answer to resolve the joke")


@pytest.mark.parametrize(("prompt", "key"), CASES)
def test_tools_are_bound_on_every_model_in_its_own_dialect(prompt: str, key: str) -> None:
    m = routed()
    answer = m.bind_tools([GetWeather], tool_choice="any").invoke(f"{prompt}: the weather in Paris?")
    assert answer.tool_calls[0]["name"] == "GetWeather" and answer.tool_calls[0]["args"] == {
        "location": "Paris"
    }
    assert answer.response_metadata[METADATA_KEY]["side"] == key and called(m) == [key]
    kwargs = m.side_models(key)[0].calls[-1]["kwargs"]  # type: ignore[attr-defined]
    if key == "mid":  # Anthropic dialect
        assert "input_schema" in kwargs["tools"][0] and kwargs["tool_choice"] == {"type": "any"}
    else:  # OpenAI dialect
        assert kwargs["tools"][0]["type"] == "function" and kwargs["tool_choice"] == "required"


def test_bind_tools_checks_every_model_up_front() -> None:
    from langchain_core.language_models import GenericFakeChatModel

    models = {**fakes(), "plain": GenericFakeChatModel(messages=iter([AIMessage("x")]))}
    m = RoutedChatModel(
        models=models,
        router=Router(models=(*KEYS, "plain"), rules={}, default=[0.9, 0.8, 0.7, 0.6]),
        lam=0.0,
        model_map={"plain": "plain"},
    )
    with pytest.raises(NotImplementedError, match="plain model GenericFakeChatModel.*every routed model"):
        m.bind_tools([GetWeather])


@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
@pytest.mark.parametrize(("prompt", "key"), CASES)
async def test_structured_output_from_whichever_model_answers(method: str, prompt: str, key: str) -> None:
    m = routed()
    structured = m.with_structured_output(Joke, method=method)  # type: ignore[arg-type]
    ask = "a joke with 'setup' and 'punchline'"  # json_mode: the fakes answer with the quoted keys
    joke = structured.invoke(f"{prompt}: {ask}")
    assert isinstance(joke, Joke)
    assert called(m) == [key]
    kwargs = m.side_models(key)[0].calls[-1]["kwargs"]  # type: ignore[attr-defined]
    if method == "function_calling":
        assert "tools" in kwargs
    else:
        assert ("output_format" if key == "mid" else "response_format") in kwargs
    raw = await m.with_structured_output(Joke, method=method, include_raw=True).ainvoke(f"{prompt}: {ask}")  # type: ignore[arg-type]
    assert isinstance(raw["parsed"], Joke) and raw["raw"].response_metadata[METADATA_KEY]["side"] == key


# ----------------------------------------------------------------------------------------------------------------
# fallback: the next best predicted quality
# ----------------------------------------------------------------------------------------------------------------


def test_fallback_other_goes_to_the_next_best_predicted_quality() -> None:
    rec, handler = Recorder(), RoutingCallbackHandler()
    # "a medium question": qualities big .8 > mid .75 > small .3; lam=0 picks big, which fails: mid answers
    m0 = routed(models=fakes(big=BROKEN), fallback="other", lam=0.0)
    answer = m0.invoke("a medium question", config={"callbacks": [rec, handler]})
    record = answer.response_metadata[METADATA_KEY]
    assert (
        record["side"] == "mid"
        and record["fallback_from"] == "big"
        and record["fallback_error"] == "RuntimeError"
    )
    assert record["qualities"] == {"big": 0.8, "mid": 0.75, "small": 0.3}  # the decision is kept
    assert [r["side"] for r in rec.records] == ["big", "mid"]
    assert called(m0) == ["big", "mid"]
    totals = handler.summary().sides
    assert totals["big"].errors == 1 and totals["mid"].calls == 1 and totals["mid"].model_names == {"mid": 1}
    assert "small" not in totals
    # both fail: the third one answers
    m1 = routed(models=fakes(big=BROKEN, mid=BROKEN), fallback="other", lam=0.0)
    assert m1.invoke("a medium question").response_metadata[METADATA_KEY]["side"] == "small"
    # the order is by predicted quality, not by key order
    m2 = routed(
        models=fakes(big=BROKEN), fallback="other", lam=0.0, router=Router(rules={"q": [0.9, 0.2, 0.6]})
    )
    assert m2.invoke("q").response_metadata[METADATA_KEY]["side"] == "small"  # .6 beats .2
    assert called(m2) == ["big", "small"]


async def test_fallback_in_async_and_streaming_paths() -> None:
    m = routed(models=fakes(big=BROKEN), fallback="other", lam=0.0)
    assert (await m.ainvoke("a hard question")).response_metadata[METADATA_KEY]["side"] == "mid"
    chunks = list(m.stream("a hard question"))
    assert chunks[0].response_metadata[METADATA_KEY]["side"] == "mid"
    achunks = [c async for c in m.astream("a hard question")]
    assert achunks[0].response_metadata[METADATA_KEY]["fallback_from"] == "big"


def test_fallback_list_and_off() -> None:
    m = routed(models=fakes(big=BROKEN), fallback=["small"], lam=0.0)
    assert m.invoke("a hard question").response_metadata[METADATA_KEY]["side"] == "small"
    assert called(m) == ["big", "small"]
    # a list restricts the fallback to those models and is tried in its own order, whatever the qualities
    # ("a hard question": mid .5 > small .3, yet small comes first)
    two = routed(models=fakes(big=BROKEN), fallback=["small", "mid"], lam=0.0)
    rec2 = Recorder()
    answer = two.invoke("a hard question", config={"callbacks": [rec2]})
    assert answer.response_metadata[METADATA_KEY]["side"] == "small" and called(two) == ["big", "small"]
    assert [r["side"] for r in rec2.records] == ["big", "small"]
    both = routed(models=fakes(big=BROKEN, small=BROKEN), fallback=["small", "mid"], lam=0.0)
    assert both.invoke("a hard question").response_metadata[METADATA_KEY]["side"] == "mid"
    assert called(both) == ["big", "mid", "small"]
    off = routed(models=fakes(big=BROKEN), lam=0.0)
    rec = Recorder()
    with pytest.raises(RuntimeError, match="provider down") as info:
        off.invoke("a hard question", config={"callbacks": [rec]})
    assert info.value is BROKEN and called(off) == ["big"] and rec.errors == [BROKEN]
    every = routed(models=fakes(big=BROKEN, mid=BROKEN, small=BROKEN), fallback="other", lam=0.0)
    with pytest.raises(RuntimeError) as info:
        every.invoke("a hard question")
    assert info.value is BROKEN
    with pytest.raises(ValueError, match="fallback names 'huge'"):
        routed(fallback=["huge"])


def test_tools_follow_the_fallback_into_the_other_dialect() -> None:
    m = routed(models=fakes(big=BROKEN), fallback="other", lam=0.0)
    answer = m.bind_tools([GetWeather], tool_choice="any").invoke("a hard question: weather in Paris?")
    assert answer.response_metadata[METADATA_KEY]["side"] == "mid"
    assert "input_schema" in m.side_models("mid")[0].calls[-1]["kwargs"]["tools"][0]  # type: ignore[attr-defined]
    joke = m.with_structured_output(Joke, method="json_schema").invoke("a hard question")
    assert isinstance(joke, Joke)


# ----------------------------------------------------------------------------------------------------------------
# per-model call arguments
# ----------------------------------------------------------------------------------------------------------------


def test_model_kwargs_reach_only_their_model() -> None:
    m = routed(model_kwargs={"big": {"seed": 7}, "mid": {"top_k": 3}}, temperature=0.2)
    for prompt, key in CASES:
        m.invoke(prompt)
        kwargs = m.side_models(key)[0].calls[-1]["kwargs"]  # type: ignore[attr-defined]
        expected = {"big": {"seed": 7}, "mid": {"top_k": 3}, "small": {}}[key]
        assert kwargs == {"temperature": 0.2, **expected}
    # a call's own argument wins over model_kwargs
    m.invoke("a hard question", seed=1)
    assert m.side_models("big")[0].calls[-1]["kwargs"]["seed"] == 1  # type: ignore[attr-defined]
    assert m._identifying_params["model_kwargs"] == {"big": {"seed": 7}, "mid": {"top_k": 3}}


def test_call_arguments_go_only_to_the_models_that_take_them() -> None:
    m = routed()
    m.invoke("a medium question", seed=5)  # mid is Anthropic-style: no seed
    assert "seed" not in m.side_models("mid")[0].calls[-1]["kwargs"]  # type: ignore[attr-defined]
    m.invoke("an easy question", seed=5)
    assert m.side_models("small")[0].calls[-1]["kwargs"]["seed"] == 5  # type: ignore[attr-defined]
    strict = routed(unsupported_call_args="raise")
    with pytest.raises(
        UnsupportedCallArgumentError, match="'seed' is not understood by the mid model.*model_kwargs"
    ):
        strict.invoke("an easy question", seed=5)  # whatever the route
    with pytest.raises(
        UnsupportedCallArgumentError, match="not understood by any routed model.*did you mean 'seed'"
    ):
        m.invoke("x", sed=5)


def test_model_kwargs_are_checked_at_construction() -> None:
    with pytest.raises(
        UnsupportedCallArgumentError, match=r"model_kwargs\['mid'\] sets 'seed', which the mid model"
    ):
        routed(model_kwargs={"mid": {"seed": 1}})
    with pytest.raises(ValueError, match="model_kwargs keys must be one of the routed models"):
        routed(model_kwargs={"huge": {"seed": 1}})
    with pytest.raises(ValueError, match="cannot set tools"):
        routed(model_kwargs={"big": {"tools": []}})


# ----------------------------------------------------------------------------------------------------------------
# construction: the two forms, the router, model names
# ----------------------------------------------------------------------------------------------------------------


def test_the_two_forms_are_exclusive() -> None:
    with pytest.raises(ValueError, match="either models=.*or strong=/weak=.*not both"):
        RoutedChatModel(models=fakes(), strong=FakeOpenAIChat(), router=Router(rules=RULES), lam=1.0)
    for threshold in (0.5, 0.0):
        with pytest.raises(ValueError, match="does not take threshold"):
            routed(threshold=threshold)
    with pytest.raises(ValueError, match="does not take strong_fraction, strong_kwargs"):
        routed(strong_fraction=0.5, strong_kwargs={"seed": 1})
    with pytest.raises(ValueError, match=r"strong=..., weak=...\) does not take lam, costs"):
        RoutedChatModel(
            strong=FakeOpenAIChat(), weak=FakeAnthropicChat(), router=KeywordRouter(), threshold=0.5, lam=1.0,
            costs={"fake-gpt": 0.1},
        )  # fmt: skip
    with pytest.raises(ValueError, match="missing: weak"):
        RoutedChatModel(strong=FakeOpenAIChat(), router=KeywordRouter(), threshold=0.5)
    with pytest.raises(ValueError, match="needs exactly one of lam.*got none"):
        routed(lam=None)
    with pytest.raises(ValueError, match="needs exactly one of lam.*got.*lam.*margin"):
        routed(margin=0.1)


def test_models_values_and_keys_are_validated() -> None:
    with pytest.raises(ValueError, match="at least two models"):
        routed(models={"big": FakeOpenAIChat(model_name="big")})
    with pytest.raises(ValueError, match=r"models\['mid'\] must be a chat model"):
        routed(models={"big": FakeOpenAIChat(model_name="big"), "mid": "gpt-4o"})
    bound = FakeOpenAIChat(model_name="mid").bind_tools([GetWeather])
    with pytest.raises(ValueError, match=r"models\['mid'\] must be.*model_kwargs="):
        routed(models={"big": FakeOpenAIChat(model_name="big"), "mid": bound.with_fallbacks([bound])})
    with pytest.raises(TypeError, match="needs a multi-model router"):
        routed(router=KeywordRouter())


def test_a_list_of_models_is_keyed_by_model_name() -> None:
    m = RoutedChatModel(models=list(fakes().values()), router=Router(rules=RULES), lam=10.0)
    assert m.sides == KEYS and m.model_names == {k: k for k in KEYS}
    assert m.invoke("a medium question").response_metadata[METADATA_KEY]["side"] == "mid"
    with pytest.raises(ValueError, match="two models named 'big'"):
        RoutedChatModel(
            models=[FakeOpenAIChat(model_name="big"), FakeAnthropicChat(model_name="big")],
            router=Router(rules=RULES),
            lam=1.0,
        )


def test_unknown_models_name_the_known_ones_or_are_mapped() -> None:
    models = {"gpt": FakeOpenAIChat(model_name="my-gpt"), **{k: v for k, v in fakes().items() if k != "big"}}
    with pytest.raises(  # the core's own error, not pydantic's wrapper around it
        UnknownModelError, match="'my-gpt' is not one this router knows; known models: big, mid, small"
    ):
        RoutedChatModel(models=models, router=Router(rules=RULES), lam=10.0)
    for mapping in ({"my-gpt": "big"}, {"gpt": "big"}):  # by model name or by key
        m = RoutedChatModel(models=models, router=Router(rules=RULES), lam=10.0, model_map=mapping)
        record = m.invoke("a hard question").response_metadata[METADATA_KEY]
        assert record["side"] == "gpt" and record["model_name"] == "my-gpt"
        assert record["qualities"] == {"gpt": 0.9, "mid": 0.5, "small": 0.3}


def test_models_default_to_the_bundled_multi_router(monkeypatch: pytest.MonkeyPatch) -> None:
    import langchain_routellm.chat_models as cm

    asked: list[Any] = []

    def fake_load(spec: Any, **kw: Any) -> Any:
        asked.append(spec)
        return Router(rules=RULES) if spec == DEFAULT_MULTI_ROUTER else KeywordRouter()

    monkeypatch.setattr(cm, "load_router", fake_load)
    routed(router=None)
    cm.RoutedChatModel(strong=FakeOpenAIChat(), weak=FakeAnthropicChat(), threshold=0.5)
    assert asked == [DEFAULT_MULTI_ROUTER, cm.DEFAULT_ROUTER]


def test_policy_identity_and_tracing() -> None:
    m = routed(fallback="other", costs={"small": 1e-5})
    assert isinstance(m.policy, CostAwarePolicy) and m.policy.sides == KEYS
    params = m._identifying_params
    assert params["models"] == {
        "big": {"_type": "fake-openai-chat", "model_name": "big"},
        "mid": {"_type": "fake-anthropic-chat", "model_name": "mid"},
        "small": {"_type": "fake-openai-chat", "model_name": "small"},
    }
    assert params["policy"]["lam"] == 10.0 and params["policy"]["costs"] == {"small": 1e-5}
    assert params["router"]["router"] == "keyword_quality" and params["fallback"] == ["big", "mid", "small"]
    assert "strong" not in params and "threshold" not in params
    before = m._get_ls_params()
    assert before["ls_provider"] == "routellm" and before["ls_model_name"] == "big|mid|small"
    assert m._get_ls_params(model="mid")["ls_provider"] == "fake-anthropic"


def test_profile_is_what_every_model_supports() -> None:
    models = {
        "big": FakeOpenAIChat(model_name="big", profile={"tool_calling": True, "max_input_tokens": 100}),
        "mid": FakeAnthropicChat(model_name="mid", profile={"tool_calling": True, "max_input_tokens": 50}),
        "small": FakeOpenAIChat(model_name="small", profile={"tool_calling": False, "max_input_tokens": 70}),
    }
    m = routed(models=models)
    assert m.profile == {"tool_calling": False, "max_input_tokens": 50}


def test_get_num_tokens() -> None:
    m = routed()
    assert m.get_num_tokens("hello world") == 2
    assert m.get_num_tokens_from_messages([HumanMessage("hello world")]) > 2


def test_sides_given_with_fallbacks() -> None:
    flaky = FakeOpenAIChat(model_name="big", error=BROKEN).with_fallbacks(
        [FakeOpenAIChat(model_name="big-2")]
    )
    m = routed(models={**fakes(), "big": flaky})
    answer = m.invoke("a hard question")
    assert answer.content.startswith("big-2") and answer.response_metadata[METADATA_KEY]["side"] == "big"
    assert m._identifying_params["model_fallbacks"] == {
        "big": [{"_type": "fake-openai-chat", "model_name": "big-2"}]
    }


# ----------------------------------------------------------------------------------------------------------------
# callback handler, store
# ----------------------------------------------------------------------------------------------------------------


def test_handler_totals_per_model_and_savings_against_one(caplog: pytest.LogCaptureFixture) -> None:
    m = routed()
    handler = RoutingCallbackHandler(prices=PRICES, strong_model="big")
    with caplog.at_level(logging.INFO, logger="langchain_routellm"):
        for prompt, _ in CASES * 2:
            m.invoke(prompt, config={"callbacks": [handler]})
        m.invoke("a hard question", model="small", config={"callbacks": [handler]})
    summary = handler.summary()
    assert {k: t.calls for k, t in summary.sides.items()} == {"big": 2, "mid": 2, "small": 3}
    assert summary.calls == 7 and summary.forced_calls == 1
    assert summary.cost is not None and summary.always_strong_cost is not None
    assert 0 < summary.saved_fraction < 1  # type: ignore[operator]
    assert any("qualities={big=0.900, mid=0.500, small=0.300}" in r.getMessage() for r in caplog.records)
    explicit = RoutingCallbackHandler(sides=m.sides)
    assert set(explicit.summary().sides) == set(KEYS)  # reported before any call
    two = RoutingCallbackHandler()
    assert set(two.summary().sides) == {"strong", "weak"}  # the two-model default is unchanged


def test_route_store_records_the_key_and_model(tmp_path: Any) -> None:
    from langchain_routellm.store import RouteStoreCallbackHandler
    from routing_core.store import RouteStore

    store = RouteStore(tmp_path / "routes.db", record_text=True)
    handler = RouteStoreCallbackHandler(store, prices=PRICES)
    m = routed()
    for prompt, _ in CASES:
        m.invoke(prompt, config={"callbacks": [handler]})
    assert handler.flush()
    rows = store.decisions()
    assert sorted((r["side"], r["model"], r["prompt"]) for r in rows) == sorted((k, k, p) for p, k in CASES)
    assert all(r["cost"] is not None and r["cost"] > 0 for r in rows)
    store.close()


def test_two_model_form_is_unchanged() -> None:
    from lc_fakes import HARD_RECORD, make_routed

    m = make_routed()
    assert m.sides == ("strong", "weak") and m.models is None and m.no_text_model == "strong"
    assert m.invoke("a hard question").response_metadata[METADATA_KEY] == HARD_RECORD
    assert "models" not in m._identifying_params and m._identifying_params["threshold"] == 0.5


async def test_concurrent_calls_each_answered_by_their_model() -> None:
    import asyncio

    m = routed(models={**fakes(), "mid": FakeAnthropicChat(model_name="mid", async_delay=0.01)})
    handler = RoutingCallbackHandler()
    prompts = [CASES[i % 3][0] + f" #{i}" for i in range(300)]
    answers = await asyncio.gather(*(m.ainvoke(p, config={"callbacks": [handler]}) for p in prompts))
    for prompt, answer in zip(prompts, answers, strict=True):
        key = dict(CASES)[prompt.split(" #")[0]]
        assert answer.response_metadata[METADATA_KEY]["side"] == key
        assert answer.content == f"{key} says hello. You said: {prompt}"
    assert {k: t.calls for k, t in handler.summary().sides.items()} == {"big": 100, "mid": 100, "small": 100}
    assert [len(m.side_models(k)[0].calls) for k in KEYS] == [100, 100, 100]  # type: ignore[attr-defined]
