"""Serialisation (issue 12): pickling and to_dict/from_dict round-trip every construction form; the LLM is found by
`load_llm` (TitleExtractor.from_dict); a completion-only side in a FunctionAgent gets our clear error."""

from __future__ import annotations

import json
import pickle
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from li_fakes import KeywordRouter, ScriptedLLM
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent, ReActAgent
from llama_index.core.extractors import TitleExtractor
from llama_index.core.llms import MockLLM
from llama_index.core.llms.loading import RECOGNIZED_LLMS, load_llm
from llama_index.core.tools import FunctionTool

from llamaindex_routellm import PAYLOAD_KEY, RoutedLLM
from routing_core import DEFAULT_ROUTER, RandomRouter, load_router

openai = pytest.importorskip("openai")
pytest.importorskip("llama_index.llms.openai")
from provider_stubs import StubOpenAI, llamaindex_openai  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect")

PROMPTS = ["What is the capital of France?", "Prove that there are infinitely many primes.", "hi"]
OPTIONS = {
    "fallback": "other",
    "fallback_on": (ConnectionError, openai.APIError),
    "route_per": "call",
    "strong_kwargs": {"seed": 7},
    "weak_kwargs": {"temperature": 0.2},
    "no_text_side": "weak",
    "route_template_vars": ("question", "query_str"),
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint folder of a small trained-style router (the `length` router saved)."""
    return load_router("length").save(tmp_path_factory.mktemp("ck") / "length")


def build(form: str, checkpoint: Path, **kw) -> RoutedLLM:
    sides = {"strong": MockLLM(max_tokens=5), "weak": MockLLM(max_tokens=3)}
    if form == "threshold":
        return RoutedLLM(**sides, router="random", router_kwargs={"seed": 3}, threshold=0.4, **kw)
    if form == "strong_fraction":
        return RoutedLLM(**sides, router="random", router_kwargs={"seed": 3}, strong_fraction=0.3, **kw)
    if form == "router_object":
        return RoutedLLM(**sides, router=RandomRouter(seed=5), threshold=0.5, **kw)
    if form == "default_router":
        return RoutedLLM(**sides, strong_fraction=0.3, **kw)  # the bundled difficulty router
    if form == "checkpoint_folder":
        return RoutedLLM(**sides, router=str(checkpoint), threshold=0.05, **kw)
    raise AssertionError(form)


FORMS = ["threshold", "strong_fraction", "router_object", "default_router", "checkpoint_folder"]


def same(a: RoutedLLM, b: RoutedLLM, form: str) -> None:
    for name in (
        "router",
        "router_kwargs",
        "threshold",
        "strong_fraction",
        "fallback",
        "fallback_on",
        "route_per",
        "strong_kwargs",
        "weak_kwargs",
        "no_text_side",
        "route_template_vars",
    ):
        assert getattr(a, name) == getattr(b, name), name
    assert type(a.get_router()) is type(b.get_router())
    assert a._fallback_types == b._fallback_types and a._fallback_sides == b._fallback_sides
    assert (b.strong.max_tokens, b.weak.max_tokens) == (5, 3)
    if form != "default_router":  # the bundled router loads an embedder on first use: too slow to repeat here
        assert [a.route(p).win_rate for p in PROMPTS] == [b.route(p).win_rate for p in PROMPTS]
        assert b.complete(PROMPTS[0]).additional_kwargs[PAYLOAD_KEY]["router"] == a.router


@pytest.mark.parametrize("form", FORMS)
def test_pickle_round_trips_every_construction_form(form: str, checkpoint: Path) -> None:
    llm = build(form, checkpoint, **OPTIONS)
    if form != "router_object":
        # a router given by name is loaded again on unpickling, so it need not be picklable itself (the bundled
        # one is not, once its embedder ran: it holds a lock); simulate that without loading the embedder
        llm.get_router().busy = threading.Lock()  # type: ignore[attr-defined]
    again = pickle.loads(pickle.dumps(llm))
    assert isinstance(again, RoutedLLM) and again.get_router() is not None
    same(llm, again, form)
    if form in ("strong_fraction", "default_router"):
        assert again.strong_fraction == 0.3 and again.threshold == llm.threshold
    if form == "default_router":
        assert again.router == DEFAULT_ROUTER


def test_pickling_an_unpicklable_router_object_is_a_clear_error() -> None:
    llm = RoutedLLM(strong=MockLLM(), weak=MockLLM(), router=KeywordRouter(), threshold=0.5)  # holds a lock
    with pytest.raises(TypeError, match=r"router object \(KeywordRouter\) is not picklable.*by name"):
        pickle.dumps(llm)


@pytest.mark.parametrize("form", [f for f in FORMS if f != "router_object"])
def test_to_dict_from_dict_round_trips(form: str, checkpoint: Path) -> None:
    llm = build(form, checkpoint, **OPTIONS)
    data = llm.to_dict()
    assert data["class_name"] == "RoutedLLM"
    assert data["fallback_on"] == ["builtins.ConnectionError", "openai.APIError"]
    json.dumps(data)  # JSON-able
    same(llm, RoutedLLM.from_dict(data), form)
    same(llm, RoutedLLM.from_json(llm.to_json()), form)
    same(llm, load_llm(data), form)  # how LlamaIndex components rebuild their LLM


def test_from_dict_of_a_router_object_asks_for_it_again() -> None:
    llm = RoutedLLM(strong=MockLLM(), weak=MockLLM(), router=KeywordRouter(), threshold=0.5)
    data = llm.to_dict()
    with pytest.raises(ValueError, match=r"Router object: pass it again.*router=<Router>"):
        RoutedLLM.from_dict(data)
    again = RoutedLLM.from_dict(data, router=KeywordRouter())
    assert again.route("a theorem").side == "strong"


def test_bad_fallback_on_name_in_a_dict() -> None:
    data = RoutedLLM(strong=MockLLM(), weak=MockLLM(), router="random", threshold=0.5).to_dict()
    data["fallback_on"] = ["no_such_module.Boom"]
    with pytest.raises(ValueError, match="cannot be imported"):
        RoutedLLM.from_dict(data)
    data["fallback_on"] = ["builtins.len"]
    with pytest.raises(ValueError, match="not an exception class"):
        RoutedLLM.from_dict(data)


def test_registered_where_load_llm_looks_names_up() -> None:
    assert RECOGNIZED_LLMS["RoutedLLM"] is RoutedLLM


@pytest.fixture
def srv() -> Iterator[StubOpenAI]:
    with StubOpenAI() as server:
        yield server


def test_title_extractor_with_a_routed_llm_round_trips(srv: StubOpenAI) -> None:
    llm = RoutedLLM(
        strong=llamaindex_openai(srv, model="gpt-4o"),
        weak=llamaindex_openai(srv, model="gpt-4o-mini"),
        router="random",
        strong_fraction=0.4,
        fallback="other",
    )
    extractor = TitleExtractor(llm=llm, nodes=2)
    data = extractor.to_dict()
    assert data["llm"]["class_name"] == "RoutedLLM"
    again = TitleExtractor.from_dict(data)
    rebuilt = again.llm
    assert isinstance(rebuilt, RoutedLLM)
    assert (rebuilt.threshold, rebuilt.strong_fraction, rebuilt.fallback) == (llm.threshold, 0.4, "other")
    assert rebuilt.strong.model == "gpt-4o" and rebuilt.weak.api_base == srv.base_url
    # and it works: the rebuilt LLM calls the stub server
    assert rebuilt.complete("hello").text.endswith(": hello")
    # pickled with real clients too
    assert pickle.loads(pickle.dumps(llm)).complete("again").text.endswith(": again")


# -- a completion-only side inside a FunctionAgent ----------------------------------------------------------


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


TOOLS = [FunctionTool.from_defaults(add)]


def completion_pair(srv: StubOpenAI) -> RoutedLLM:
    return RoutedLLM(
        strong=llamaindex_openai(srv, model="gpt-4o"),
        weak=llamaindex_openai(srv, model="gpt-3.5-turbo-instruct"),  # a completion model: no tools
        router=KeywordRouter(),
        threshold=0.5,
    )


async def test_function_agent_with_a_completion_side_names_the_side(srv: StubOpenAI) -> None:
    llm = completion_pair(srv)
    with pytest.raises(
        ValueError, match=r"weak model \(gpt-3.5-turbo-instruct, OpenAI\) does not support"
    ) as e:
        await FunctionAgent(tools=TOOLS, llm=llm).run(user_msg="add 2 and 3")
    assert "ReActAgent" in str(e.value) and "FunctionCallingLLM" not in str(e.value)
    with pytest.raises(ValueError, match="does not support function calling"):
        await AgentWorkflow(agents=[FunctionAgent(name="calc", tools=TOOLS, llm=llm)]).run(
            user_msg="add 2 and 3"
        )
    assert srv.requests == []
    # outside a FunctionAgent the metadata is readable as before, and a ReActAgent works with the pair
    assert llm.metadata.is_function_calling_model is False
    srv.reply = lambda body: "Thought: I can answer without using any more tools.\nAnswer: 5"
    result = await ReActAgent(tools=TOOLS, llm=llm, streaming=False).run(user_msg="add 2 and 3")
    assert "5" in str(result.response.content)


def test_scripted_sides_keep_their_calls_after_unpickling() -> None:
    llm = RoutedLLM(
        strong=ScriptedLLM(model_name="s"), weak=ScriptedLLM(model_name="w"), router="random", threshold=0.5
    )
    again = pickle.loads(pickle.dumps(llm))
    assert again.chat_with_tools(TOOLS, user_msg="x").additional_kwargs[PAYLOAD_KEY]["router"] == "random"
