# ruff: noqa: F811
"""RoutedLLM over three real llama_index `OpenAI` clients talking to a stub server (issue 13, item 3): the request
reaches the chosen model (the `model` field the server received), on every call path, with fallbacks in the
policy's order, per-model arguments, each model's own structured-output format, a FunctionAgent with tools, the
ledger per model from the provider's usage, pickling and to_dict with real clients, and the bundled multi-model
router as the default.

Scripted qualities (`multi_fakes.KeywordQualityRouter`), priced per call from `PRICES` x tokens; with lam=100
the score is quality - 100 x USD per call (about 0.26 for gpt-4o, 0.015 for gpt-4o-mini, 0.04 for gpt-3.5-turbo):
"proof" -> gpt-4o, "summar" -> mini (gpt-4o-mini), "code" -> legacy (gpt-3.5-turbo), anything else -> mini.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from typing import Any

import pytest
from li_fakes import attached, events  # noqa: F401
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.llms.loading import load_llm
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from multi_fakes import KeywordQualityRouter
from pydantic import BaseModel

from llamaindex_routellm import PAYLOAD_KEY, RoutedArgumentError, RoutedLLM, RoutingEventHandler
from routing_core.errors import UnknownModelError
from routing_core.registry import DEFAULT_MULTI_ROUTER

openai = pytest.importorskip("openai")
pytest.importorskip("llama_index.llms.openai")
from provider_stubs import StubOpenAI, llamaindex_openai  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect")

NAMES = {"gpt-4o": "gpt-4o", "mini": "gpt-4o-mini", "legacy": "gpt-3.5-turbo"}
KEYS = tuple(NAMES)
PRICES = {"gpt-4o": (2.5, 10.0), "gpt-4o-mini": (0.15, 0.6), "gpt-3.5-turbo": (0.5, 1.5)}
RULES = {"proof": [0.95, 0.4, 0.3], "summar": [0.8, 0.75, 0.5], "code": [0.6, 0.3, 0.7]}
DEFAULT_Q = [0.5, 0.5, 0.5]
HARD = "Write a proof that sqrt(2) is irrational."
MEDIUM = "Summarise the causes of the French revolution."
CODE = "Write code that reverses a list."
QUESTIONS = [(HARD, "gpt-4o"), (MEDIUM, "mini"), (CODE, "legacy")]


class Capital(BaseModel):
    """A capital city."""

    city: str
    population: int


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


TOOLS = [FunctionTool.from_defaults(add)]


class _Router(KeywordQualityRouter):
    """The scripted router as a module-level class (picklable, registrable by name)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(models=tuple(NAMES.values()), rules=RULES, default=DEFAULT_Q, **kw)


@pytest.fixture
def srv() -> Iterator[StubOpenAI]:
    with StubOpenAI() as server:
        server.json_reply = lambda body: {"city": body["model"], "population": 7}
        yield server


def clients(srv: StubOpenAI, timeout: float = 5) -> dict[str, Any]:
    return {k: llamaindex_openai(srv, model=name, timeout=timeout) for k, name in NAMES.items()}


def real(srv: StubOpenAI, r: Any = None, **kw: Any) -> RoutedLLM:
    kw.setdefault("lam", 100.0)
    return RoutedLLM(models=clients(srv), router=r if r is not None else _Router(), prices=PRICES, **kw)


def user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role=MessageRole.USER, content=text)]


def _is(model: str) -> Any:
    return lambda body: body.get("model") == model


# -- every call path ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("question", "key"), QUESTIONS)
def test_sync_call_paths_reach_the_chosen_model(srv: StubOpenAI, events, question: str, key: str) -> None:
    llm = real(srv, route_per="call")
    model = NAMES[key]
    chat = llm.chat(user(question))
    assert chat.message.content == f"{model}: {question}"
    assert "".join(c.delta or "" for c in llm.stream_chat(user(question))) == f"{model}: {question}"
    assert llm.complete(question).text == f"{model}: {question}"
    assert list(llm.stream_complete(question))[-1].text == f"{model}: {question}"
    assert srv.models == [model] * 4
    assert [r.get("stream", False) for r in srv.requests] == [False, True, False, True]
    payload = chat.additional_kwargs[PAYLOAD_KEY]
    assert (payload["side"], payload["model_name"]) == (key, model)
    assert set(payload["qualities"]) == set(KEYS) and payload["costs"][key] > 0
    assert {d.side for d in events.decisions} == {e.side for e in events.ends} == {key}
    # the provider's usage for plain calls (the stub reports none in a stream unless asked to)
    assert [e.usage_source for e in events.ends] == ["provider", "estimate", "provider", "estimate"]


@pytest.mark.parametrize(("question", "key"), QUESTIONS)
async def test_async_call_paths_reach_the_chosen_model(srv: StubOpenAI, question: str, key: str) -> None:
    llm = real(srv, route_per="call")
    model = NAMES[key]
    assert (await llm.achat(user(question))).message.content == f"{model}: {question}"
    chunks = [c async for c in await llm.astream_chat(user(question))]
    assert chunks[-1].message.content == f"{model}: {question}"
    assert (await llm.acomplete(question)).text == f"{model}: {question}"
    last = [c async for c in await llm.astream_complete(question)][-1]
    assert last.additional_kwargs[PAYLOAD_KEY]["side"] == key
    assert srv.models == [model] * 4


def test_predict_routes_on_the_question_not_the_context(srv: StubOpenAI) -> None:
    qa = PromptTemplate("Context: {context_str}\nQuestion: {query_str}")
    llm = real(srv)
    answer = llm.predict(qa, context_str="a proof, in code " * 30, query_str=MEDIUM)
    assert answer.startswith("gpt-4o-mini: ") and srv.models == ["gpt-4o-mini"]


def test_forcing_a_model_by_key_or_name(srv: StubOpenAI) -> None:
    llm = real(srv)
    llm.chat(user(HARD), routellm_model="legacy")
    llm.chat(user(HARD), routellm_model="gpt-4o-mini")
    assert srv.models == ["gpt-3.5-turbo", "gpt-4o-mini"]


# -- fallback -------------------------------------------------------------------------------------------------

FAILURES = [
    pytest.param(500, "InternalServerError", id="500"),
    pytest.param(429, "RateLimitError", id="429"),
    pytest.param(0, "APIConnectionError", id="dropped-connection"),
]


@pytest.mark.parametrize(("status", "error_name"), FAILURES)
@pytest.mark.parametrize("method", ["chat", "stream_chat", "complete", "astream_chat"])
async def test_provider_errors_fall_back_to_the_next_best_model(
    srv: StubOpenAI, events, method: str, status: int, error_name: str
) -> None:
    srv.fail_when(_is("gpt-4o-mini"), status)
    llm = real(srv, fallback="other")
    # mini chosen; then gpt-4o (predicted 0.8) before legacy (0.5)
    if method == "chat":
        out: Any = llm.chat(user(MEDIUM))
    elif method == "stream_chat":
        out = list(llm.stream_chat(user(MEDIUM)))[-1]
    elif method == "complete":
        out = llm.complete(MEDIUM)
    else:
        out = [c async for c in await llm.astream_chat(user(MEDIUM))][-1]
    payload = out.additional_kwargs[PAYLOAD_KEY]
    assert (payload["side"], payload["fallback_from"], payload["fallback_error"]) == (
        "gpt-4o",
        "mini",
        error_name,
    )
    assert srv.models == ["gpt-4o-mini", "gpt-4o"]
    assert [(d.side, d.fallback_from) for d in events.decisions] == [("mini", None), ("gpt-4o", "mini")]
    assert [e.status for e in events.ends] == ["error", "ok"]


def test_every_model_failing_raises_the_chosen_models_error(srv: StubOpenAI) -> None:
    srv.fail_when(lambda body: True, 500)
    with pytest.raises(openai.InternalServerError) as info:
        real(srv, fallback="other").chat(user(CODE))
    assert len(info.value.__notes__) == 2 and srv.models == ["gpt-3.5-turbo", "gpt-4o", "gpt-4o-mini"]


def test_fallback_off_keeps_the_provider_error(srv: StubOpenAI) -> None:
    srv.fail_when(_is("gpt-4o"), 429)
    with pytest.raises(openai.RateLimitError):
        real(srv).chat(user(HARD))
    assert srv.models == ["gpt-4o"]


# -- per-model arguments ------------------------------------------------------------------------------------


def test_model_kwargs_reach_only_their_model_and_follow_a_fallback(srv: StubOpenAI) -> None:
    llm = real(srv, model_kwargs={"legacy": {"seed": 7}, "gpt-4o": {"seed": 11}}, fallback="other")
    llm.chat(user(CODE))
    llm.chat(user(MEDIUM))
    llm.chat(user(HARD), seed=3)  # the call's own argument wins
    assert [(r["model"], r.get("seed")) for r in srv.requests] == [
        ("gpt-3.5-turbo", 7),
        ("gpt-4o-mini", None),
        ("gpt-4o", 3),
    ]
    srv.reset()
    srv.fail_when(_is("gpt-3.5-turbo"), 500)
    llm.chat(user(CODE))  # legacy fails; gpt-4o (0.6) before mini (0.3), with its own seed
    assert [(r["model"], r.get("seed")) for r in srv.requests] == [("gpt-3.5-turbo", 7), ("gpt-4o", 11)]


def test_an_argument_the_chosen_client_refuses_is_our_error(srv: StubOpenAI) -> None:
    llm = real(srv, fallback="other")
    with pytest.raises(RoutedArgumentError, match=r"'legacy' model \(gpt-3.5-turbo, OpenAI\).*'top_k'") as e:
        llm.chat(user(CODE), top_k=3)
    assert e.value.side == "legacy" and srv.requests == []


# -- structured output: each model's own format -----------------------------------------------------------


def test_structured_predict_uses_the_chosen_models_own_format(srv: StubOpenAI, events) -> None:
    qa = PromptTemplate("Context: {context_str}\nQuestion: {query_str}")
    llm = real(srv)
    assert llm.structured_predict(Capital, qa, context_str="c", query_str=MEDIUM) == Capital(
        city="gpt-4o-mini", population=7
    )
    req = srv.last
    assert req["model"] == "gpt-4o-mini" and req["response_format"]["type"] == "json_schema"
    assert "tools" not in req
    out = llm.structured_predict(Capital, qa, context_str="c", query_str=CODE)
    assert isinstance(out, Capital)
    req = srv.last  # gpt-3.5-turbo has no json_schema: OpenAI's own function-calling path
    assert req["model"] == "gpt-3.5-turbo" and "response_format" not in req
    assert [t["function"]["name"] for t in req["tools"]] == ["Capital"]
    assert [(d.call, d.side) for d in events.decisions] == [
        ("structured_predict", "mini"),
        ("structured_predict", "legacy"),
    ]


async def test_async_structured_and_as_structured_llm(srv: StubOpenAI) -> None:
    llm = real(srv)
    qa = PromptTemplate("{query_str}")
    assert (await llm.astructured_predict(Capital, qa, query_str=HARD)).city == "gpt-4o"
    response = llm.as_structured_llm(Capital).chat(user(MEDIUM))
    assert response.raw == Capital(city="gpt-4o-mini", population=7)
    assert srv.models == ["gpt-4o", "gpt-4o-mini"]


# -- a FunctionAgent over three models ---------------------------------------------------------------------


def _first_step(body: dict) -> bool:
    """Call the tool until a tool result is in the conversation, then answer in text."""
    return not any(m.get("role") == "tool" for m in body.get("messages", []))


@pytest.mark.parametrize("streaming", [True, False])
@pytest.mark.parametrize(
    ("question", "key"), [(f"{HARD} Also add 2 and 3.", "gpt-4o"), (f"{CODE} Add 2 and 3.", "legacy")]
)
async def test_function_agent_over_three_real_clients(
    srv: StubOpenAI, events, streaming: bool, question: str, key: str
) -> None:
    srv.use_tool = _first_step
    srv.tool_args = {"a": 2, "b": 3}
    r = _Router()
    llm = real(srv, r=r)
    agent = FunctionAgent(tools=TOOLS, llm=llm, system_prompt="Use the tools.", streaming=streaming)
    result = await agent.run(user_msg=question)
    assert [c.tool_output.raw_output for c in result.tool_calls] == [5]
    assert str(result.response.content) == f"{NAMES[key]}: {question}"
    assert srv.models == [NAMES[key]] * 2  # the tool step and the answer, both on the chosen model
    assert [t["function"]["name"] for t in srv.requests[0]["tools"]] == ["add"]
    assert r.calls == [[question]]  # one decision for the run
    assert [d.side for d in events.decisions] == [key, key] and len(
        {d.turn_id for d in events.decisions}
    ) == 1


async def test_function_agent_falls_back_and_stays_on_the_model_that_answered(
    srv: StubOpenAI, events
) -> None:
    srv.use_tool = _first_step
    srv.tool_args = {"a": 2, "b": 3}
    srv.fail_when(_is("gpt-4o"), 500)
    llm = real(srv, fallback="other")
    agent = FunctionAgent(tools=TOOLS, llm=llm, streaming=False)
    result = await agent.run(user_msg=f"{HARD} Add 2 and 3.")
    assert [c.tool_output.raw_output for c in result.tool_calls] == [5]
    # gpt-4o failed; mini (0.4) before legacy (0.3); the second step went straight to mini
    assert srv.models == ["gpt-4o", "gpt-4o-mini", "gpt-4o-mini"]
    assert [(d.side, d.fallback_from) for d in events.decisions] == [
        ("gpt-4o", None),
        ("mini", "gpt-4o"),
        ("mini", "gpt-4o"),
    ]


# -- ledger -----------------------------------------------------------------------------------------------


def test_the_ledger_counts_provider_usage_per_model(srv: StubOpenAI) -> None:
    llm = real(srv, fallback="other")
    with attached(RoutingEventHandler()) as handler:
        for question, _ in QUESTIONS * 2:
            llm.chat(user(question))
        srv.fail_when(_is("gpt-3.5-turbo"), 500)
        llm.chat(user(CODE))
    s = handler.summary()
    assert list(s.sides) == list(KEYS)
    assert [s.sides[k].calls for k in KEYS] == [3, 2, 3] and s.sides["legacy"].errors == 1
    assert {k: s.sides[k].model_names for k in KEYS} == {
        "gpt-4o": {"gpt-4o": 3},
        "mini": {"gpt-4o-mini": 2},
        "legacy": {"gpt-3.5-turbo": 2},
    }
    assert all(s.sides[k].estimated_calls == 0 for k in KEYS)  # the provider reported usage
    assert s.strong_model == "gpt-4o" and s.cost is not None and 0 < s.cost < s.always_strong_cost


# -- serialisation with real clients ------------------------------------------------------------------------


@pytest.fixture
def by_name(monkeypatch: pytest.MonkeyPatch) -> str:
    from routing_core import registry

    monkeypatch.setitem(registry._REGISTRY, "kw_quality_openai", f"{_Router.__module__}:_Router")
    return "kw_quality_openai"


def test_pickle_and_to_dict_with_real_clients(srv: StubOpenAI, by_name: str) -> None:
    llm = real(srv, r=by_name, fallback="other", model_kwargs={"legacy": {"seed": 7}})
    again = pickle.loads(pickle.dumps(llm))
    assert again.chat(user(CODE)).message.content == f"gpt-3.5-turbo: {CODE}"
    assert srv.last["seed"] == 7
    data = llm.to_dict()
    json.dumps(data)
    assert {k: v["class_name"] for k, v in data["models"].items()} == dict.fromkeys(KEYS, "openai_llm")
    rebuilt = load_llm(data)  # every model rebuilt as a real OpenAI client pointed at the stub
    assert isinstance(rebuilt, RoutedLLM) and rebuilt.models is not None
    assert rebuilt.models["mini"].api_base == srv.base_url
    assert rebuilt.chat(user(MEDIUM)).message.content == f"gpt-4o-mini: {MEDIUM}"


# -- the bundled multi-model router, by default ------------------------------------------------------------


def test_the_bundled_multi_model_router_is_the_default(srv: StubOpenAI) -> None:
    models = {
        "gpt-4o": llamaindex_openai(srv, model="gpt-4o"),
        "gpt-4-turbo": llamaindex_openai(srv, model="gpt-4-1106-preview"),
        "legacy": llamaindex_openai(srv, model="gpt-3.5-turbo"),
    }
    with pytest.raises(UnknownModelError, match=r"'o3-mini' is not one this router knows; known models"):
        RoutedLLM(models={**models, "local": llamaindex_openai(srv, model="o3-mini")}, lam=100.0)
    undated = RoutedLLM(models=models, lam=100.0)  # "gpt-4o" resolves to its latest dated snapshot
    assert undated.policy.describe()["columns"][0] == "gpt-4o-2024-08-06"
    model_map = {"gpt-4o": "gpt-4o-2024-08-06", "legacy": "gpt-3.5-turbo-0125"}  # by model name or key
    llm = RoutedLLM(models=models, model_map=model_map, target_cost=1e-3)  # lam from its reference sample
    assert llm.router == DEFAULT_MULTI_ROUTER and llm.lam is not None and llm.target_cost == 1e-3
    assert llm.policy.describe()["columns"] == [
        "gpt-4o-2024-08-06",
        "gpt-4-1106-preview",
        "gpt-3.5-turbo-0125",
    ]
    # a forced call needs no embedding: it reaches its model
    assert llm.complete("hi", routellm_model="legacy").text == "gpt-3.5-turbo: hi"
