"""RoutedChatModel: construction, routing decisions, routing text, metadata on every path, tools, structured
output, tokens, tracing params and bad input."""

from __future__ import annotations

import math
import warnings
from typing import Any
from uuid import UUID

import numpy as np
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.rate_limiters import BaseRateLimiter
from langchain_core.runnables import RunnableLambda
from lc_fakes import (
    HARD_RECORD,
    NO_TEXT_FIELDS,
    FakeAnthropicChat,
    FakeOpenAIChat,
    KeywordRouter,
    ZeroLatencyChat,
    make_routed,
)
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

import langchain_routellm.chat_models as chat_models_module
import routing_core
from langchain_routellm import METADATA_KEY, RoutedChatModel, default_routing_text, message_text
from routing_core import DEFAULT_ROUTER, RandomRouter, Router
from routing_core.costs import count_tokens

PAYLOAD_KEYS = set(routing_core.PAYLOAD_KEYS)
IMAGE = {"type": "image", "base64": "iVBORw0KGgo=", "mime_type": "image/png"}


class Recorder(BaseCallbackHandler):
    """Records chat-model starts (with their tracing metadata), custom events, ends and errors."""

    def __init__(self) -> None:
        self.starts: list[tuple[UUID, dict[str, Any]]] = []
        self.events: list[tuple[str, Any, UUID]] = []
        self.ends: list[UUID] = []
        self.errors: list[tuple[BaseException, UUID]] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.starts.append((run_id, kwargs.get("metadata") or {}))

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.events.append((name, data, run_id))

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.ends.append(run_id)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.errors.append((error, run_id))


class Joke(BaseModel):
    """Joke to tell user."""

    setup: str = Field(description="question to set up a joke")
    punchline: str = Field(description="answer to resolve the joke")


class JokeDict(TypedDict):
    """Joke to tell user."""

    setup: str
    punchline: str


# ----------------------------------------------------------------------------------------------------------------
# construction
# ----------------------------------------------------------------------------------------------------------------


def test_threshold_or_strong_fraction_is_required() -> None:
    with pytest.raises(ValueError, match="threshold=<float in \\[0, 1\\]>.*strong_fraction"):
        RoutedChatModel(strong=FakeOpenAIChat(), weak=FakeAnthropicChat(), router="random")


def test_threshold_and_strong_fraction_together_are_rejected() -> None:
    with pytest.raises(ValueError, match="exactly one of threshold or strong_fraction, got both"):
        make_routed(threshold=0.5, strong_fraction=0.3)


@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan, math.inf, True])
def test_out_of_range_threshold(bad: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        make_routed(threshold=bad)


@pytest.mark.parametrize("bad", [-0.5, 1.01, math.nan])
def test_out_of_range_strong_fraction(bad: float) -> None:
    with pytest.raises(ValueError, match="strong_fraction"):
        make_routed(threshold=None, strong_fraction=bad)


def test_strong_fraction_resolves_through_the_router() -> None:
    m = make_routed(router="random", threshold=None, strong_fraction=0.3)
    assert (
        m.threshold == pytest.approx(RandomRouter().threshold_for_strong_fraction(0.3)) == pytest.approx(0.7)
    )
    assert m.strong_fraction == 0.3
    k = make_routed(threshold=None, strong_fraction=0.3)  # KeywordRouter: 30% of its reference rates are 0.9
    assert k.threshold == pytest.approx(0.9)
    assert k.invoke("a hard one").response_metadata[METADATA_KEY]["side"] == "strong"
    assert k.invoke("an easy one").response_metadata[METADATA_KEY]["side"] == "weak"


def test_strong_fraction_needs_reference_win_rates() -> None:
    class NoReference(Router):
        name = "noref"

        def _win_rate(self, prompts: list[str]) -> np.ndarray:
            return np.full(len(prompts), 0.5)

    with pytest.raises(ValueError, match="no reference win rates"):
        make_routed(router=NoReference(), threshold=None, strong_fraction=0.5)


def test_default_router_is_routing_core_default(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    def fake_load(spec: Any, **kwargs: Any) -> Router:
        seen.append(spec)
        return RandomRouter()

    monkeypatch.setattr(chat_models_module, "load_router", fake_load)
    RoutedChatModel(strong=FakeOpenAIChat(), weak=FakeAnthropicChat(), threshold=0.5)
    assert seen == [DEFAULT_ROUTER]


def test_router_is_loaded_once_from_name_with_kwargs(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, dict[str, Any]]] = []
    real = chat_models_module.load_router

    def counting(spec: Any, **kwargs: Any) -> Router:
        calls.append((spec, kwargs))
        return real(spec, **kwargs)

    monkeypatch.setattr(chat_models_module, "load_router", counting)
    m = RoutedChatModel(
        strong=FakeOpenAIChat(),
        weak=FakeAnthropicChat(),
        router="random",
        router_kwargs={"seed": 3},
        threshold=0.5,
    )
    assert calls == [("random", {"seed": 3})]
    router = m.router
    assert isinstance(router, RandomRouter) and router.seed == 3
    m.invoke("one")
    m.batch(["two", "three"])
    list(m.stream("four"))
    assert m.router is router and len(calls) == 1


def test_router_instance_is_used_as_is_and_excluded_from_serialization() -> None:
    router = KeywordRouter()
    m = make_routed(router=router)
    assert m.router is router
    dumped = m.model_dump()
    assert "router" not in dumped and "routing_text" not in dumped
    assert dumped["threshold"] == 0.5


def test_bad_router_argument() -> None:
    with pytest.raises(TypeError, match="router must be"):
        make_routed(router=42)
    with pytest.raises(ValueError, match="unknown router"):
        make_routed(router="no-such-router")


def test_client_arguments_warn_and_are_ignored() -> None:
    with pytest.warns(
        UserWarning, match="api_key, max_retries, timeout.*belong to the strong and weak models"
    ):
        m = make_routed(api_key="x", timeout=30, max_retries=2)
    assert not hasattr(m, "api_key")


def test_standard_call_params_are_forwarded() -> None:
    m = make_routed(temperature=0.2, max_tokens=50, stop=["END"])
    m.invoke("easy")
    call = m.weak.calls[-1]
    assert call["kwargs"]["temperature"] == 0.2 and call["kwargs"]["max_tokens"] == 50
    assert call["stop"] == ["END"]
    m.invoke("easy", stop=["X"], temperature=0.9)
    call = m.weak.calls[-1]
    assert call["stop"] == ["X"] and call["kwargs"]["temperature"] == 0.9


def test_identifying_params_and_llm_type() -> None:
    m = make_routed()
    params = m._identifying_params
    assert params["strong"]["model_name"] == "fake-gpt" and params["strong"]["_type"] == "fake-openai-chat"
    assert params["weak"]["model_name"] == "fake-claude"
    assert params["router"] == {"router": "keyword", "keyword": "hard"}
    assert params["threshold"] == 0.5
    assert m._llm_type == "routellm"
    assert m.model_names == {"strong": "fake-gpt", "weak": "fake-claude"}


def test_profile_is_what_both_models_support() -> None:
    strong = FakeOpenAIChat(profile={"tool_calling": True, "image_inputs": True, "max_input_tokens": 128_000})
    weak = FakeAnthropicChat(
        profile={"tool_calling": True, "image_inputs": False, "max_input_tokens": 200_000}
    )
    m = make_routed(strong=strong, weak=weak)
    assert m.profile == {"tool_calling": True, "image_inputs": False, "max_input_tokens": 128_000}
    assert make_routed().profile is None


# ----------------------------------------------------------------------------------------------------------------
# decisions and metadata
# ----------------------------------------------------------------------------------------------------------------


def test_decision_follows_the_win_rate_and_metadata_is_complete() -> None:
    m = make_routed()
    hard = m.invoke("a hard question")
    easy = m.invoke("an easy question")
    assert hard.response_metadata["model_name"] == "fake-gpt"
    assert easy.response_metadata["model_name"] == "fake-claude"
    record = hard.response_metadata[METADATA_KEY]
    assert set(record) == PAYLOAD_KEYS
    assert record == HARD_RECORD
    assert easy.response_metadata[METADATA_KEY]["side"] == "weak"
    assert len(m.strong.calls) == 1 and len(m.weak.calls) == 1


def test_ties_go_strong() -> None:
    m = make_routed(router=KeywordRouter(high=0.5, low=0.49), threshold=0.5)
    assert m.invoke("hard").response_metadata[METADATA_KEY]["side"] == "strong"
    assert m.invoke("soft").response_metadata[METADATA_KEY]["side"] == "weak"


def test_random_router_is_deterministic_per_prompt() -> None:
    m = make_routed(router="random", threshold=0.5)
    prompts = [f"question {i}" for i in range(40)]
    first = [m.invoke(p).response_metadata[METADATA_KEY] for p in prompts]
    again = [m.invoke(p).response_metadata[METADATA_KEY] for p in prompts]
    assert first == again
    expected = RandomRouter().win_rate(prompts)
    assert [r["win_rate"] for r in first] == pytest.approx(list(expected))
    assert {r["side"] for r in first} == {"strong", "weak"}


@pytest.mark.parametrize(
    ("requested", "side"),
    [("strong", "strong"), ("weak", "weak"), ("fake-gpt", "strong"), ("fake-claude", "weak")],
)
def test_force_a_side_per_call(requested: str, side: str) -> None:
    router = KeywordRouter()
    m = make_routed(router=router)
    msg = m.invoke("hard and easy", model=requested)
    assert msg.response_metadata[METADATA_KEY] == {
        "router": "keyword",
        "threshold": 0.5,
        "win_rate": None,
        "side": side,
        "model_name": m.model_names[side],
        "reason": "forced",
        "source": "caller",
        "text_hash": None,
        "text_preview": None,
    }
    assert router.seen == []  # the router is not consulted
    assert "model" not in m._model(side).calls[-1]["kwargs"]  # the selector is not forwarded
    chunks = list(m.stream("hard", model=requested))
    assert sum(chunks[1:], chunks[0]).response_metadata[METADATA_KEY]["side"] == side


async def test_force_a_side_async_and_auto() -> None:
    m = make_routed()
    assert (await m.ainvoke("hard", model="weak")).response_metadata[METADATA_KEY]["side"] == "weak"
    assert (await m.ainvoke("hard", model="auto")).response_metadata[METADATA_KEY]["reason"] == "router"
    chunks = [c async for c in m.astream("easy", model="strong")]
    assert sum(chunks[1:], chunks[0]).response_metadata[METADATA_KEY]["side"] == "strong"


def test_unknown_model_selector_is_a_clear_error_inside_the_run() -> None:
    m = make_routed()
    rec = Recorder()
    with pytest.raises(ValueError, match="cannot force the routed model to 'gpt-9'"):
        m.invoke("hi", model="gpt-9", config={"callbacks": [rec]})
    assert len(rec.starts) == 1 and len(rec.errors) == 1 and rec.ends == []
    assert m.strong.calls == [] and m.weak.calls == []


def test_metadata_appears_exactly_once_on_a_stream() -> None:
    m = make_routed()
    chunks = list(m.stream("hard question about streams"))
    tagged = [c for c in chunks if METADATA_KEY in c.response_metadata]
    assert len(tagged) == 1 and tagged[0] is chunks[0]
    full = sum(chunks[1:], chunks[0])
    assert full.response_metadata[METADATA_KEY]["side"] == "strong"
    assert full.response_metadata[METADATA_KEY]["model_name"] == "fake-gpt"
    assert full.response_metadata["model_name"] == "fake-gpt"  # not concatenated
    assert chunks[-1].chunk_position == "last"


async def test_metadata_on_async_and_batch_paths() -> None:
    m = make_routed()
    assert (await m.ainvoke("hard")).response_metadata[METADATA_KEY]["side"] == "strong"
    chunks = [c async for c in m.astream("easy")]
    assert [METADATA_KEY in c.response_metadata for c in chunks].count(True) == 1
    assert sum(chunks[1:], chunks[0]).response_metadata[METADATA_KEY]["side"] == "weak"
    results = await m.abatch(["hard a", "easy b"])
    assert [r.response_metadata[METADATA_KEY]["side"] for r in results] == ["strong", "weak"]


def test_generate_with_several_prompts_routes_each() -> None:
    m = make_routed()
    rec = Recorder()
    result = m.generate([[HumanMessage("hard one")], [HumanMessage("easy one")]], callbacks=[rec])
    sides = [g[0].message.response_metadata[METADATA_KEY]["side"] for g in result.generations]
    assert sides == ["strong", "weak"]
    assert [e[1]["side"] for e in rec.events] == ["strong", "weak"]
    assert {e[2] for e in rec.events} == {s[0] for s in rec.starts}


def test_output_version_v1_keeps_the_record() -> None:
    m = make_routed(output_version="v1")
    msg = m.invoke("hard")
    assert msg.response_metadata[METADATA_KEY]["side"] == "strong"
    assert msg.response_metadata["output_version"] == "v1"
    chunks = list(m.stream("easy"))
    assert sum(chunks[1:], chunks[0]).response_metadata[METADATA_KEY]["side"] == "weak"


# ----------------------------------------------------------------------------------------------------------------
# routing text
# ----------------------------------------------------------------------------------------------------------------


def test_default_routing_text_is_the_last_human_text() -> None:
    messages = [
        SystemMessage("hard system prompt"),
        HumanMessage("first"),
        AIMessage("hard reply"),
        HumanMessage("second"),
    ]
    assert default_routing_text(messages) == "second"
    m = make_routed()
    assert m.invoke(messages).response_metadata[METADATA_KEY]["side"] == "weak"  # "hard" elsewhere is ignored
    assert m.router.seen == ["second"]


def test_only_text_blocks_are_read() -> None:
    msg = HumanMessage(
        [
            {"type": "text", "text": "describe"},
            IMAGE,
            "plain string part",
            {"type": "tool_result", "tool_use_id": "x", "content": "hard"},
            {"type": "text", "text": "this"},
        ]
    )
    assert message_text(msg) == "describe\nplain string part\nthis"
    m = make_routed()
    assert m.invoke([msg]).response_metadata[METADATA_KEY]["side"] == "weak"


def test_image_only_message_falls_back_to_the_previous_human_text() -> None:
    m = make_routed()
    messages = [HumanMessage("a hard question about pictures"), AIMessage("send it"), HumanMessage([IMAGE])]
    record = m.invoke(messages).response_metadata[METADATA_KEY]
    assert record["side"] == "strong" and record["reason"] == "router"
    assert m.router.seen == ["a hard question about pictures"]
    sent = m.strong.calls[-1]["messages"]
    assert sent[-1].content == [IMAGE]  # the image is still sent to the model


@pytest.mark.parametrize(
    "messages",
    [
        [HumanMessage([IMAGE])],
        [ToolMessage("hard tool output", tool_call_id="1")],
        [SystemMessage("hard system"), AIMessage("hard ai")],
        [HumanMessage("   ")],
    ],
    ids=["image-only", "tool-result-only", "no-human", "blank"],
)
def test_no_human_text_goes_to_no_text_model_without_the_router(messages: list[BaseMessage]) -> None:
    m = make_routed()
    record = m.invoke(messages).response_metadata[METADATA_KEY]
    assert record == {**HARD_RECORD, **NO_TEXT_FIELDS, "reason": "no_text", "source": "no_user_text"}
    assert m.router.seen == []
    weak_default = make_routed(no_text_model="weak")
    assert weak_default.invoke(messages).response_metadata[METADATA_KEY]["side"] == "weak"


def test_tool_loop_is_routed_on_the_user_request() -> None:
    m = make_routed()
    messages = [
        HumanMessage("an easy question"),
        AIMessage("", tool_calls=[{"name": "t", "args": {}, "id": "1", "type": "tool_call"}]),
        ToolMessage("a hard hard result", tool_call_id="1", name="t"),
    ]
    assert m.invoke(messages).response_metadata[METADATA_KEY]["side"] == "weak"


def test_custom_routing_text() -> None:
    m = make_routed(routing_text=lambda msgs: " ".join(message_text(x) for x in msgs))
    assert (
        m.invoke([SystemMessage("hard"), HumanMessage("easy")]).response_metadata[METADATA_KEY]["side"]
        == "strong"
    )
    empty = make_routed(routing_text=lambda msgs: "", no_text_model="weak")
    assert empty.invoke("hard").response_metadata[METADATA_KEY]["reason"] == "no_text"
    bad = make_routed(routing_text=lambda msgs: 42)
    with pytest.raises(TypeError, match="routing_text must return a str"):
        bad.invoke("x")


def test_empty_message_list_is_a_clear_error_inside_the_run() -> None:
    m = make_routed()
    for call in (lambda cfg: m.invoke([], config=cfg), lambda cfg: list(m.stream([], config=cfg))):
        rec = Recorder()
        with pytest.raises(ValueError, match="empty message list"):
            call({"callbacks": [rec]})
        assert len(rec.errors) == 1 and rec.errors[0][1] == rec.starts[0][0]
    assert m.strong.calls == [] and m.weak.calls == []


async def test_empty_message_list_async() -> None:
    m = make_routed()
    with pytest.raises(ValueError, match="empty message list"):
        await m.ainvoke([])
    with pytest.raises(ValueError, match="empty message list"):
        [c async for c in m.astream([])]


# ----------------------------------------------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------------------------------------------


def test_inner_error_propagates_and_the_run_ends_in_error() -> None:
    boom = RuntimeError("provider down")
    m = make_routed(strong=FakeOpenAIChat(error=boom))
    rec = Recorder()
    with pytest.raises(RuntimeError, match="provider down") as info:
        m.invoke("hard", config={"callbacks": [rec]})
    assert info.value is boom
    assert [e[0] for e in rec.errors] == [boom] and rec.ends == []
    assert [e[1]["side"] for e in rec.events] == ["strong"]  # the decision was still reported
    assert m.invoke("easy").content  # the other side is unaffected


def test_inner_error_mid_stream() -> None:
    boom = ConnectionError("stream cut")
    m = make_routed(weak=FakeAnthropicChat(error=boom, error_after_chunks=2))
    rec = Recorder()
    got = []
    with pytest.raises(ConnectionError, match="stream cut"):
        for chunk in m.stream("easy question", config={"callbacks": [rec]}):
            got.append(chunk)
    assert len(got) == 2
    assert len(rec.errors) == 1 and rec.errors[0][0] is boom


async def test_inner_error_async_paths() -> None:
    boom = RuntimeError("async provider down")
    m = make_routed(strong=FakeOpenAIChat(error=boom))
    rec = Recorder()
    with pytest.raises(RuntimeError, match="async provider down"):
        await m.ainvoke("hard", config={"callbacks": [rec]})
    with pytest.raises(RuntimeError, match="async provider down"):
        [c async for c in m.astream("hard", config={"callbacks": [rec]})]
    assert len(rec.errors) == 2


def test_router_error_propagates_inside_the_run() -> None:
    class Broken(Router):
        name = "broken"

        def _win_rate(self, prompts: list[str]) -> np.ndarray:
            raise OSError("checkpoint unreadable")

    m = make_routed(router=Broken())
    rec = Recorder()
    with pytest.raises(OSError, match="checkpoint unreadable"):
        m.invoke("x", config={"callbacks": [rec]})
    assert len(rec.errors) == 1


# ----------------------------------------------------------------------------------------------------------------
# tracing params
# ----------------------------------------------------------------------------------------------------------------


def test_ls_params_name_the_model_that_answered() -> None:
    m = make_routed()
    rec = Recorder()
    m.invoke("hard", config={"callbacks": [rec]})
    m.invoke("easy", config={"callbacks": [rec]})
    list(m.stream("easy", config={"callbacks": [rec]}))
    metas = [meta for _, meta in rec.starts]
    assert [(x["ls_provider"], x["ls_model_name"]) for x in metas] == [
        ("fake-openai", "fake-gpt"),
        ("fake-anthropic", "fake-claude"),
        ("fake-anthropic", "fake-claude"),
    ]
    assert all(x["ls_model_type"] == "chat" for x in metas)


async def test_ls_params_async() -> None:
    m = make_routed()
    rec = Recorder()
    await m.ainvoke("hard", config={"callbacks": [rec]})
    [c async for c in m.astream("easy", config={"callbacks": [rec]})]
    assert [meta["ls_model_name"] for _, meta in rec.starts] == ["fake-gpt", "fake-claude"]


def test_ls_params_before_a_decision_and_with_overrides() -> None:
    m = make_routed(temperature=0.3, max_tokens=20, stop=["x"])
    params = m._get_ls_params()
    assert params["ls_provider"] == "routellm" and params["ls_model_name"] == "fake-gpt|fake-claude"
    assert params["ls_temperature"] == 0.3 and params["ls_max_tokens"] == 20 and params["ls_stop"] == ["x"]
    assert m._get_ls_params(model="weak")["ls_model_name"] == "fake-claude"
    assert m._get_ls_params(model="fake-gpt")["ls_provider"] == "fake-openai"
    assert m._get_ls_params(model="something-else")["ls_model_name"] == "something-else"


# ----------------------------------------------------------------------------------------------------------------
# tools and structured output across providers
# ----------------------------------------------------------------------------------------------------------------


def get_weather(city: str) -> str:
    """Get the weather for a city."""
    return f"sunny in {city}"


def test_bind_tools_uses_each_providers_dialect() -> None:
    m = make_routed()
    bound = m.bind_tools([get_weather], tool_choice="any")
    strong_msg = bound.invoke("hard: the weather in 'Paris'?")
    weak_msg = bound.invoke("easy: the weather in 'Rome'?")
    assert strong_msg.tool_calls[0]["name"] == weak_msg.tool_calls[0]["name"] == "get_weather"
    assert strong_msg.tool_calls[0]["args"] == {"city": "Paris"}
    assert weak_msg.tool_calls[0]["args"] == {"city": "Rome"}
    strong_kwargs, weak_kwargs = m.strong.calls[-1]["kwargs"], m.weak.calls[-1]["kwargs"]
    assert strong_kwargs["tools"][0]["type"] == "function" and strong_kwargs["tool_choice"] == "required"
    assert "input_schema" in weak_kwargs["tools"][0] and weak_kwargs["tool_choice"] == {"type": "any"}
    streamed = list(bound.stream("easy: weather in 'Oslo'"))
    full = sum(streamed[1:], streamed[0])
    assert full.tool_calls[0]["args"] == {"city": "Oslo"}


def test_tools_are_converted_once_per_side() -> None:
    counts = {"strong": 0, "weak": 0}

    class CountingOpenAI(FakeOpenAIChat):
        def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
            counts["strong"] += 1
            return super().bind_tools(tools, **kwargs)

    class CountingAnthropic(FakeAnthropicChat):
        def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
            counts["weak"] += 1
            return super().bind_tools(tools, **kwargs)

    m = make_routed(strong=CountingOpenAI(), weak=CountingAnthropic())
    bound = m.bind_tools([get_weather])
    assert counts == {"strong": 1, "weak": 1}  # checked and converted at bind time
    for prompt in ["hard 'A'", "easy 'B'", "hard 'C'", "easy 'D'"]:
        bound.invoke(prompt)
    assert counts == {"strong": 1, "weak": 1}


def test_bind_tools_requires_tool_support_on_both_sides() -> None:
    m = make_routed(weak=GenericFakeChatModel(messages=iter(["x"])))
    with pytest.raises(
        NotImplementedError, match="weak model GenericFakeChatModel does not support tool calling"
    ):
        m.bind_tools([get_weather])


def test_raw_tools_kwarg_is_also_translated() -> None:
    m = make_routed()
    msg = m.invoke("easy weather in 'Lima'", tools=[get_weather], tool_choice="any")
    assert msg.tool_calls[0]["args"] == {"city": "Lima"}
    assert "input_schema" in m.weak.calls[-1]["kwargs"]["tools"][0]


def test_tool_calling_loop_with_two_tools() -> None:
    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    tools = {"get_weather": get_weather, "multiply": multiply}
    m = make_routed()
    bound = m.bind_tools(list(tools.values()))
    messages: list[BaseMessage] = [HumanMessage("hard: weather in 'Paris' and multiply 6 by 7")]
    for _ in range(5):
        ai = bound.invoke(messages)
        messages.append(ai)
        if not ai.tool_calls:
            break
        for call in ai.tool_calls:
            out = tools[call["name"]](**call["args"])
            messages.append(ToolMessage(str(out), tool_call_id=call["id"], name=call["name"]))
    assert "sunny in Paris" in messages[-1].content and "42" in messages[-1].content
    assert {m_.response_metadata[METADATA_KEY]["side"] for m_ in messages if isinstance(m_, AIMessage)} == {
        "strong"
    }


@pytest.mark.parametrize(
    "schema", [Joke, JokeDict, Joke.model_json_schema()], ids=["pydantic", "typeddict", "json"]
)
@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
def test_structured_output_on_both_sides(schema: Any, method: str) -> None:
    m = make_routed()
    structured = m.with_structured_output(schema, method=method)
    prompt = "Tell me a joke with 'setup' and 'punchline'"
    for text in (f"hard: {prompt}", f"easy: {prompt}"):
        out = structured.invoke(text)
        data = out.model_dump() if isinstance(out, BaseModel) else out
        assert set(data) == {"setup", "punchline"}
        streamed = list(structured.stream(text))
        assert streamed and type(streamed[-1]) is type(out)
    dialect = {
        "function_calling": ("tools", "tools"),
        "json_schema": ("response_format", "output_format"),
        "json_mode": ("response_format", "output_format"),
    }[method]
    assert dialect[0] in m.strong.calls[-1]["kwargs"] and dialect[1] in m.weak.calls[-1]["kwargs"]


async def test_structured_output_include_raw_and_async() -> None:
    m = make_routed()
    structured = m.with_structured_output(Joke, include_raw=True)
    out = await structured.ainvoke("hard joke 'setup' 'punchline'")
    assert isinstance(out["parsed"], Joke) and out["parsing_error"] is None
    assert out["raw"].response_metadata[METADATA_KEY]["side"] == "strong"
    js = m.with_structured_output(Joke, method="json_schema", include_raw=True)
    out = await js.ainvoke("easy joke")
    assert isinstance(out["parsed"], Joke) and out["raw"].response_metadata[METADATA_KEY]["side"] == "weak"


def test_structured_output_bad_method_and_unsupported_side() -> None:
    m = make_routed()
    with pytest.raises(ValueError, match="unknown method 'xml'"):
        m.with_structured_output(Joke, method="xml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unsupported arguments"):
        m.with_structured_output(Joke, foo=1)
    plain = make_routed(weak=GenericFakeChatModel(messages=iter(["x"])))
    with pytest.raises(NotImplementedError, match="weak model GenericFakeChatModel"):
        plain.with_structured_output(Joke, method="json_schema")


def test_structured_output_is_traced_with_its_schema() -> None:
    class Options(Recorder):
        def __init__(self) -> None:
            super().__init__()
            self.options: list[Any] = []

        def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
            self.options.append(kwargs.get("options"))

    m = make_routed()
    rec = Options()
    m.with_structured_output(Joke, method="json_schema").invoke("hard joke", config={"callbacks": [rec]})
    assert rec.options[0]["ls_structured_output_format"]["kwargs"]["method"] == "json_schema"


# ----------------------------------------------------------------------------------------------------------------
# streaming details, inner-model settings, tokens, cache
# ----------------------------------------------------------------------------------------------------------------


def test_streaming_flag_streams_invoke_through_the_chosen_model() -> None:
    m = make_routed(streaming=True)
    msg = m.invoke("hard")
    assert msg.response_metadata[METADATA_KEY]["side"] == "strong"
    assert m.strong.calls[-1]["method"] == "_stream"


def test_inner_model_that_cannot_stream_yields_one_chunk() -> None:
    m = RoutedChatModel(
        strong=ZeroLatencyChat(),
        weak=FakeAnthropicChat(disable_streaming=True),
        router=KeywordRouter(),
        threshold=0.5,
    )
    for prompt, side in (("hard", "strong"), ("easy", "weak")):
        chunks = list(m.stream(prompt))
        assert chunks[0].response_metadata[METADATA_KEY]["side"] == side
        assert chunks[-1].chunk_position == "last"
        assert sum(chunks[1:], chunks[0]).text
    assert m.weak.calls[-1]["method"] == "_generate"


def test_inner_rate_limiter_is_honored() -> None:
    class Counting(BaseRateLimiter):
        def __init__(self) -> None:
            self.n = 0

        def acquire(self, *, blocking: bool = True) -> bool:
            self.n += 1
            return True

        async def aacquire(self, *, blocking: bool = True) -> bool:
            self.n += 1
            return True

    limiter = Counting()
    m = make_routed(strong=FakeOpenAIChat(rate_limiter=limiter))
    m.invoke("hard")
    list(m.stream("hard"))
    m.invoke("easy")
    assert limiter.n == 2


def test_inner_models_get_the_run_manager_on_non_streaming_calls() -> None:
    m = make_routed()
    m.invoke("hard")
    call = m.strong.calls[-1]
    assert call["method"] == "_generate" and call["run_manager"] is True


def test_cache_on_the_router_model() -> None:
    from langchain_core.caches import InMemoryCache

    m = make_routed(cache=InMemoryCache())
    first = m.invoke("hard cached")
    second = m.invoke("hard cached")
    assert first.content == second.content and len(m.strong.calls) == 1
    m.invoke("easy cached")
    assert len(m.weak.calls) == 1


def test_token_counting_is_offline_tiktoken() -> None:
    m = make_routed()
    text = "Routing sends easy prompts to the cheap model."
    assert m.get_num_tokens(text) == count_tokens(text) > 0
    assert len(m.get_token_ids(text)) == m.get_num_tokens(text)
    assert m.get_num_tokens_from_messages([HumanMessage(text), AIMessage("ok")]) > m.get_num_tokens(text)
    o200 = make_routed(tiktoken_encoding="o200k_base")
    assert o200.get_num_tokens(text) == count_tokens(text, "o200k_base")


def test_no_warnings_on_normal_use() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = make_routed()
        m.invoke("hard")
        list(m.stream("easy"))


def test_provider_whose_bind_tools_is_not_a_binding_is_rejected() -> None:
    class Odd(FakeAnthropicChat):
        def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
            return RunnableLambda(lambda x: x)

    with pytest.raises(TypeError, match="weak model Odd.bind_tools returned RunnableLambda"):
        make_routed(weak=Odd()).bind_tools([get_weather])


def test_structured_output_with_an_unusual_provider_shape_is_rejected() -> None:
    class Odd(FakeOpenAIChat):
        def with_structured_output(self, schema: Any, **kwargs: Any) -> Any:
            return RunnableLambda(lambda x: x)

    with pytest.raises(NotImplementedError, match="strong model Odd.*Use method='function_calling'"):
        make_routed(strong=Odd()).with_structured_output(Joke, method="json_schema")
    assert make_routed(strong=Odd()).with_structured_output(Joke).invoke("hard 'a' 'b'") == Joke(
        setup="a", punchline="b"
    )


def test_a_routed_model_can_be_an_inner_model() -> None:
    inner = make_routed()
    outer = RoutedChatModel(
        strong=inner, weak=FakeOpenAIChat(model_name="other"), router=KeywordRouter("deep"), threshold=0.5
    )
    assert outer.model_names == {"strong": "fake-gpt|fake-claude", "weak": "other"}
    rec = Recorder()
    msg = outer.invoke("deep and hard", config={"callbacks": [rec]})
    assert msg.response_metadata["model_name"] == "fake-gpt"
    assert msg.response_metadata[METADATA_KEY]["model_name"] == "fake-gpt|fake-claude"  # the outer decision
    assert [e[1]["model_name"] for e in rec.events] == [
        "fake-gpt|fake-claude",
        "fake-gpt",
    ]  # both, in one run
    assert len(rec.starts) == 1
    bound = outer.bind_tools([get_weather], tool_choice="any")
    assert bound.invoke("deep but easy: weather in 'Kyiv'").tool_calls[0]["args"] == {"city": "Kyiv"}
    assert "input_schema" in inner.weak.calls[-1]["kwargs"]["tools"][0]
