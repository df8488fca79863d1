"""`RoutedChatModel(models={...})` over three real partner clients (ChatOpenAI gpt-4o and gpt-4o-mini, ChatAnthropic
haiku) against stub servers on 127.0.0.1: each prompt's request reaches the chosen model only, in its provider's
dialect (tools, json_schema structured output, call arguments), streams natively, falls back to the next best
predicted quality on a provider error, and a LangChain/LangGraph agent with tools runs over the three models
with one model per turn."""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.tools import tool
from multi_fakes import KeywordQualityRouter
from provider_stubs import Recorded, StubAnthropic, StubOpenAI, anthropic_chat, openai_chat
from pydantic import BaseModel, Field

from langchain_routellm import (
    METADATA_KEY,
    ROUTE_EVENT,
    RoutedChatModel,
    RoutingCallbackHandler,
    UnsupportedCallArgumentError,
)

pytest.importorskip("langchain_openai")
pytest.importorskip("langchain_anthropic")

HAIKU = "claude-3-5-haiku-latest"
# Fixed costs of 1e-2, 1e-3, 1e-4 USD per call (over the price table's); with lam=10 "hard" goes to gpt-4o,
# "medium" to haiku (Anthropic) and "easy" to gpt-4o-mini.
RULES = {"hard": [0.9, 0.5, 0.3], "medium": [0.8, 0.75, 0.3], "easy": [0.6, 0.55, 0.55]}
CASES = [("a hard question", "gpt-4o"), ("a medium question", "haiku"), ("an easy question", "mini")]
NAMES = {"gpt-4o": "gpt-4o", "haiku": HAIKU, "mini": "gpt-4o-mini"}
COSTS = {"gpt-4o": 1e-2, "haiku": 1e-3, "mini": 1e-4}


class Router(KeywordQualityRouter):
    def describe(self) -> dict[str, Any]:
        return {"router": self.name, "models": list(self.models)}


@pytest.fixture
def stubs() -> Iterator[tuple[StubOpenAI, StubAnthropic]]:
    with StubOpenAI() as o, StubAnthropic() as a:
        yield o, a


def routed(o: StubOpenAI, a: StubAnthropic, **kw: Any) -> RoutedChatModel:
    opts: dict[str, Any] = {
        "models": {
            "gpt-4o": openai_chat(o, model="gpt-4o"),
            "haiku": anthropic_chat(a),
            "mini": openai_chat(o),
        },
        "router": Router(models=("gpt-4o", HAIKU, "gpt-4o-mini"), rules=RULES),
        "lam": 10.0,
        "costs": COSTS,
        **kw,
    }
    return RoutedChatModel(**opts)


def requests_by_key(o: StubOpenAI, a: StubAnthropic) -> list[str]:
    """Which routed model each request was for, in arrival order per server (OpenAI first)."""
    by_model = {v: k for k, v in NAMES.items()}
    return [by_model[str(r.get("model"))] for r in [*o.requests, *a.requests]]


class Events(BaseCallbackHandler):
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.starts: list[dict[str, Any]] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.starts.append(kwargs.get("metadata") or {})

    def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        if name == ROUTE_EVENT:
            self.records.append(dict(data))


# ----------------------------------------------------------------------------------------------------------------
# every call path reaches the chosen model only
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("prompt", "key"), CASES)
def test_invoke_and_stream_reach_the_chosen_provider(
    stubs: tuple[StubOpenAI, StubAnthropic], prompt: str, key: str
) -> None:
    o, a = stubs
    m = routed(o, a)
    events, handler = Events(), RoutingCallbackHandler()
    answer = m.invoke(prompt, config={"callbacks": [events, handler]})
    record = answer.response_metadata[METADATA_KEY]
    assert record["side"] == key and record["model_name"] == NAMES[key]
    assert record["qualities"] == dict(zip(NAMES, RULES[prompt.split()[1]], strict=True))
    assert requests_by_key(o, a) == [key]  # one request, to the chosen model
    assert answer.usage_metadata and answer.usage_metadata["input_tokens"] > 0
    assert events.starts[0]["ls_model_name"] == NAMES[key]
    assert events.starts[0]["ls_provider"] == ("anthropic" if key == "haiku" else "openai")
    # the ledger prices the call with the default price table, under the routing key
    totals = handler.summary().sides
    assert set(totals) == {key} and totals[key].cost is not None and totals[key].cost > 0
    assert next(iter(totals[key].model_names)).startswith(NAMES[key])

    chunks = list(m.stream(prompt))
    assert len(chunks) > 1 and chunks[0].response_metadata[METADATA_KEY]["side"] == key
    assert sum(1 for c in chunks if METADATA_KEY in c.response_metadata) == 1
    last = (o.requests + a.requests)[-1] if key != "haiku" else a.requests[-1]
    assert last.get("stream") is True and requests_by_key(o, a).count(key) == 2


async def test_async_calls_reach_the_chosen_provider(stubs: tuple[StubOpenAI, StubAnthropic]) -> None:
    o, a = stubs
    m = routed(o, a)
    answers = await asyncio.gather(*(m.ainvoke(p) for p, _ in CASES))
    assert [x.response_metadata[METADATA_KEY]["side"] for x in answers] == [k for _, k in CASES]
    for prompt, key in CASES:
        chunks = [c async for c in m.astream(prompt)]
        assert chunks[0].response_metadata[METADATA_KEY]["model_name"] == NAMES[key]
    assert sorted(requests_by_key(o, a)) == sorted([k for _, k in CASES] * 2)
    assert sorted(str(r["model"]) for r in o.requests) == ["gpt-4o", "gpt-4o", "gpt-4o-mini", "gpt-4o-mini"]


# ----------------------------------------------------------------------------------------------------------------
# tools, structured output, call arguments: each provider's own dialect
# ----------------------------------------------------------------------------------------------------------------


class GetWeather(BaseModel):
    """Get the current weather in a given location."""

    location: str = Field(description="The city, e.g. Paris")


class Joke(BaseModel):
    """Joke to tell user."""

    setup: str
    punchline: str


@pytest.mark.parametrize(("prompt", "key"), CASES)
def test_tools_in_each_providers_dialect(
    stubs: tuple[StubOpenAI, StubAnthropic], prompt: str, key: str
) -> None:
    o, a = stubs
    m = routed(o, a)
    answer = m.bind_tools([GetWeather], tool_choice="any").invoke(f"{prompt}: weather in Paris?")
    assert answer.tool_calls and answer.tool_calls[0]["name"] == "GetWeather"
    assert answer.response_metadata[METADATA_KEY]["side"] == key and requests_by_key(o, a) == [key]
    body = (a if key == "haiku" else o).last
    if key == "haiku":
        assert "input_schema" in body["tools"][0] and body["tool_choice"] == {"type": "any"}
    else:
        assert body["tools"][0]["type"] == "function" and body["tool_choice"] == "required"
    chunks = list(m.bind_tools([GetWeather], tool_choice="any").stream(f"{prompt}: weather in Paris?"))
    merged = chunks[0]
    for c in chunks[1:]:
        merged = merged + c  # type: ignore[assignment]
    assert merged.tool_calls[0]["name"] == "GetWeather"  # type: ignore[attr-defined]


@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
@pytest.mark.parametrize(("prompt", "key"), CASES)
def test_structured_output_across_providers(
    stubs: tuple[StubOpenAI, StubAnthropic], method: str, prompt: str, key: str
) -> None:
    o, a = stubs
    a.reply = lambda body: json.dumps({"setup": "why?", "punchline": "because"})
    m = routed(o, a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # provider notes on beta structured outputs
        joke = m.with_structured_output(Joke, method=method).invoke(f"{prompt}: a joke")  # type: ignore[arg-type]
    assert isinstance(joke, Joke) and requests_by_key(o, a) == [key]
    body = (a if key == "haiku" else o).last
    if method == "function_calling":
        assert body["tools"]
    elif key == "haiku":
        assert body["output_config"]["format"]["type"] == "json_schema"
    else:
        assert body["response_format"]["type"] == "json_schema"


def test_model_kwargs_and_call_arguments_per_provider(stubs: tuple[StubOpenAI, StubAnthropic]) -> None:
    o, a = stubs
    m = routed(o, a, model_kwargs={"gpt-4o": {"seed": 7}, "haiku": {"top_k": 5}})
    m.invoke("a hard question")
    assert o.last["seed"] == 7 and "top_k" not in o.last
    m.invoke("a medium question")
    assert a.last["top_k"] == 5 and "seed" not in a.last
    m.invoke("an easy question")
    assert "seed" not in o.last and o.last["model"] == "gpt-4o-mini"
    m.invoke("a medium question", seed=3)  # an OpenAI argument is not sent to Anthropic
    assert "seed" not in a.last
    m.invoke("an easy question", seed=3)
    assert o.last["seed"] == 3
    strict = routed(o, a, unsupported_call_args="raise")
    with pytest.raises(
        UnsupportedCallArgumentError, match="'seed' is not understood by the haiku model ChatAnthropic"
    ):
        strict.invoke("an easy question", seed=3)
    with pytest.raises(UnsupportedCallArgumentError, match="sets 'top_k', which the mini model ChatOpenAI"):
        routed(o, a, model_kwargs={"mini": {"top_k": 5}})


# ----------------------------------------------------------------------------------------------------------------
# fallback to the next best predicted quality
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 429, 0])
def test_provider_error_falls_back_to_the_next_best(
    stubs: tuple[StubOpenAI, StubAnthropic], status: int
) -> None:
    o, a = stubs
    o.fail_when(lambda body: body.get("model") == "gpt-4o", status)
    m = routed(o, a, fallback="other")
    events = Events()
    answer = m.invoke("a hard question", config={"callbacks": [events]})  # gpt-4o .9 > haiku .5 > mini .3
    record = answer.response_metadata[METADATA_KEY]
    assert record["side"] == "haiku" and record["fallback_from"] == "gpt-4o"
    assert [r["side"] for r in events.records] == ["gpt-4o", "haiku"]
    assert requests_by_key(o, a) == ["gpt-4o", "haiku"]
    chunks = list(m.stream("a hard question"))
    assert chunks[0].response_metadata[METADATA_KEY]["side"] == "haiku"


async def test_async_fallback_and_no_fallback(stubs: tuple[StubOpenAI, StubAnthropic]) -> None:
    o, a = stubs
    a.fail_next(529, n=10)
    m = routed(o, a, fallback="other")
    answer = await m.ainvoke("a medium question")  # haiku fails: gpt-4o (.8) before mini (.3)
    assert answer.response_metadata[METADATA_KEY]["side"] == "gpt-4o"
    import anthropic

    with pytest.raises(anthropic.APIStatusError):
        await routed(o, a).ainvoke("a medium question")


# ----------------------------------------------------------------------------------------------------------------
# an agent with tools over three models: one model per turn
# ----------------------------------------------------------------------------------------------------------------


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def _tool_results_since_last_human(body: Recorded) -> int:
    n = 0
    for m in body.get("messages") or []:
        content = m.get("content")
        if m.get("role") == "user" and not (
            isinstance(content, list)
            and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)
        ):
            n = 0
        if m.get("role") == "tool":
            n += 1
        if isinstance(content, list):
            n += sum(1 for b in content if isinstance(b, dict) and b.get("type") == "tool_result")
    return n


def _react(model: RoutedChatModel, tools: list[Any]) -> Any:
    prebuilt = pytest.importorskip("langgraph.prebuilt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return prebuilt.create_react_agent(model, tools)


def _create_agent(model: RoutedChatModel, tools: list[Any]) -> Any:
    agents = pytest.importorskip("langchain.agents")
    return agents.create_agent(model, tools)


BUILDERS: dict[str, Callable[[RoutedChatModel, list[Any]], Any]] = {
    "langgraph.create_react_agent": _react,
    "langchain.create_agent": _create_agent,
}


def _ai_keys(messages: list[BaseMessage]) -> list[str]:
    return [m.response_metadata[METADATA_KEY]["side"] for m in messages if isinstance(m, AIMessage)]


@pytest.fixture
def agent_stubs(stubs: tuple[StubOpenAI, StubAnthropic]) -> tuple[StubOpenAI, StubAnthropic]:
    for s in stubs:
        s.use_tool = lambda body: _tool_results_since_last_human(body) < 2  # two tool steps, then the answer
        s.tool_args = {"a": 6, "b": 7}
    return stubs


@pytest.mark.parametrize("builder", list(BUILDERS))
@pytest.mark.parametrize(("prompt", "key"), CASES)
def test_agent_with_tools_over_three_models(
    agent_stubs: tuple[StubOpenAI, StubAnthropic], builder: str, prompt: str, key: str
) -> None:
    o, a = agent_stubs
    events = Events()
    agent = BUILDERS[builder](routed(o, a), [multiply])
    question = f"{prompt}: 6 times 7?"
    out = agent.invoke({"messages": [("human", question)]}, config={"callbacks": [events]})
    assert _ai_keys(out["messages"]) == [key] * 3  # two tool steps and the answer, all on the chosen model
    assert [m.type for m in out["messages"]] == ["human", "ai", "tool", "ai", "tool", "ai"]
    assert out["messages"][2].content == "42"
    assert requests_by_key(o, a) == [key] * 3
    assert len(events.records) == 3 and all(r == events.records[0] for r in events.records)
    assert events.records[0]["text_preview"] == question and "qualities" in events.records[0]
    body = (a if key == "haiku" else o).last
    assert ("input_schema" in body["tools"][0]) == (key == "haiku")  # tools in the model's own dialect


@pytest.mark.parametrize("builder", list(BUILDERS))
def test_each_turn_of_a_conversation_has_its_own_model(
    agent_stubs: tuple[StubOpenAI, StubAnthropic], builder: str
) -> None:
    o, a = agent_stubs
    agent = BUILDERS[builder](routed(o, a), [multiply])
    messages: list[Any] = []
    seen: list[list[str]] = []
    for prompt, _ in CASES:
        before = len(messages)
        out = agent.invoke({"messages": [*messages, HumanMessage(f"{prompt}: 6 times 7?")]})
        messages = out["messages"]
        seen.append(_ai_keys(messages[before:]))
    assert seen == [[k] * 3 for _, k in CASES]  # one model per turn, a new decision per human message


@pytest.mark.parametrize("builder", list(BUILDERS))
async def test_async_agent_over_three_models_with_fallback(
    agent_stubs: tuple[StubOpenAI, StubAnthropic], builder: str
) -> None:
    o, a = agent_stubs
    o.fail_when(lambda body: body.get("model") == "gpt-4o", 500)
    agent = BUILDERS[builder](routed(o, a, fallback="other"), [multiply])
    out = await agent.ainvoke({"messages": [("human", "a hard question: 6 times 7?")]})
    records = [m.response_metadata[METADATA_KEY] for m in out["messages"] if isinstance(m, AIMessage)]
    assert [r["side"] for r in records] == ["haiku"] * 3  # every step falls back to the next best
    assert all(r["fallback_from"] == "gpt-4o" for r in records)
    assert out["messages"][-1].content


# ----------------------------------------------------------------------------------------------------------------
# the bundled multi-model router, by default
# ----------------------------------------------------------------------------------------------------------------


def test_the_bundled_multi_model_router_is_the_default(stubs: tuple[StubOpenAI, StubAnthropic]) -> None:
    from routing_core.cost_policy import CostAwarePolicy
    from routing_core.errors import UnknownModelError

    o, a = stubs
    models = {
        "gpt-4o": openai_chat(o, model="gpt-4o"),
        "gpt-4-turbo": openai_chat(o, model="gpt-4-1106-preview"),
        "haiku": anthropic_chat(a, model="claude-3-haiku-20240307"),
    }
    with pytest.raises(UnknownModelError, match=r"'o3-mini' is not one this router knows; known models"):
        RoutedChatModel(models={**models, "local": openai_chat(o, model="o3-mini")}, lam=100.0)
    m = RoutedChatModel(models=models, target_cost=1e-3)  # lam calibrated on the router's reference sample
    assert isinstance(m.policy, CostAwarePolicy) and m.policy.lam is not None
    columns = m.policy.describe()["columns"]
    assert columns[0].startswith("gpt-4o") and columns[1:] == [
        "gpt-4-1106-preview",
        "claude-3-haiku-20240307",
    ]
    forced = m.invoke("hi", model="haiku")  # a forced call needs no embedding
    assert (
        forced.response_metadata[METADATA_KEY]["side"] == "haiku"
        and a.last["model"] == "claude-3-haiku-20240307"
    )
    before = [*o.requests, *a.requests]
    answer = m.invoke("Prove that there are infinitely many primes.")  # routed by the bundled router
    record = answer.response_metadata[METADATA_KEY]
    assert set(record["qualities"]) == set(models) and all(0 <= q <= 1 for q in record["qualities"].values())
    assert record["side"] in models and record["reason"] == "router" and record["lambda"] == m.policy.lam
    new = [r for r in [*o.requests, *a.requests] if not any(r is b for b in before)]
    assert [r["model"] for r in new] == [models[record["side"]]._get_ls_params()["ls_model_name"]]
