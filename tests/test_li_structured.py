"""Native structured output (issue 12): the chosen model runs its own `structured_predict`.

For LlamaIndex `OpenAI` that is `response_format={"type": "json_schema", ...}` on models that support it (and its
own function-calling path on older ones), checked on the request the stub server received. The decision is still
one `RoutingDecisionEvent` / `RoutedCallEndEvent` pair, routed on the question.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from li_fakes import HARD, KeywordRouter, ScriptedLLM, events  # noqa: F401
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.prompts import PromptTemplate
from pydantic import BaseModel

from llamaindex_routellm import RoutedLLM

pytest.importorskip("llama_index.llms.openai")
from provider_stubs import StubOpenAI, llamaindex_openai  # noqa: E402

EASY = "Which city is the capital of France?"
HARD_Q = f"Which city does the {HARD} name?"
QA = PromptTemplate("Context: {context_str}\nQuestion: {query_str}\nAnswer as JSON.")


class Capital(BaseModel):
    """A capital city."""

    city: str
    population: int


@pytest.fixture
def srv() -> Iterator[StubOpenAI]:
    with StubOpenAI() as server:
        server.json_reply = lambda body: {"city": body["model"], "population": 7}
        yield server


def real(srv: StubOpenAI, weak_model: str = "gpt-4o-mini") -> tuple[RoutedLLM, KeywordRouter]:
    router = KeywordRouter()
    llm = RoutedLLM(
        strong=llamaindex_openai(srv, model="gpt-4o"),
        weak=llamaindex_openai(srv, model=weak_model),
        router=router,
        threshold=0.5,
    )
    return llm, router


def native(request: dict) -> bool:
    """The OpenAI-native structured-output form: a strict JSON schema, no tools."""
    fmt = request.get("response_format") or {}
    return (
        fmt.get("type") == "json_schema"
        and fmt["json_schema"]["name"] == "Capital"
        and set(fmt["json_schema"]["schema"]["properties"]) == {"city", "population"}
        and "tools" not in request
    )


@pytest.mark.parametrize(
    ("question", "model", "side"), [(HARD_Q, "gpt-4o", "strong"), (EASY, "gpt-4o-mini", "weak")]
)
def test_structured_predict_uses_the_chosen_models_native_schema(srv, events, question, model, side) -> None:  # noqa: F811
    llm, router = real(srv)
    out = llm.structured_predict(Capital, QA, context_str=f"long context with a {HARD}", query_str=question)
    assert out == Capital(city=model, population=7)
    assert len(srv.requests) == 1 and srv.last["model"] == model and native(srv.last)
    assert router.seen == [question]  # routed on the question, not the context
    (decision,) = events.decisions
    assert (decision.side, decision.call, decision.source) == (side, "structured_predict", "query_str")
    (end,) = events.ends
    assert end.decision_id == decision.decision_id and end.status == "ok" and end.output_tokens > 0


async def test_async_and_streaming_variants_are_native_too(srv, events) -> None:  # noqa: F811
    llm, router = real(srv)
    assert await llm.astructured_predict(Capital, QA, context_str="c", query_str=HARD_Q) == Capital(
        city="gpt-4o", population=7
    )
    parts = list(llm.stream_structured_predict(Capital, QA, context_str="c", query_str=EASY))
    assert parts[-1] == Capital(city="gpt-4o-mini", population=7)
    agen = await llm.astream_structured_predict(Capital, QA, context_str="c", query_str=HARD_Q)
    streamed = [part async for part in agen]
    assert streamed[-1] == Capital(city="gpt-4o", population=7)
    assert [r["model"] for r in srv.requests] == ["gpt-4o", "gpt-4o-mini", "gpt-4o"]
    assert all(native(r) for r in srv.requests)
    assert [r.get("stream", False) for r in srv.requests] == [False, True, True]
    assert [d.call for d in events.decisions] == [
        "astructured_predict",
        "stream_structured_predict",
        "astream_structured_predict",
    ]
    assert [e.status for e in events.ends] == ["ok", "ok", "ok"]


def test_a_model_without_json_schema_uses_its_own_function_calling_path(srv) -> None:
    llm, _ = real(srv, weak_model="gpt-3.5-turbo")  # no json_schema support: OpenAI's own tool path
    out = llm.structured_predict(Capital, QA, context_str="c", query_str=EASY)
    assert isinstance(out, Capital)
    req = srv.last
    assert req["model"] == "gpt-3.5-turbo" and "response_format" not in req
    assert req["tool_choice"] == "required" and [t["function"]["name"] for t in req["tools"]] == ["Capital"]


def test_as_structured_llm_and_forcing(srv, events) -> None:  # noqa: F811
    llm, router = real(srv)
    response = llm.as_structured_llm(Capital).chat([ChatMessage(role="user", content=HARD_Q)])
    assert response.raw == Capital(city="gpt-4o", population=7) and native(srv.last)
    assert router.seen == [HARD_Q]
    llm.structured_predict(Capital, QA, context_str="c", query_str=HARD_Q, routellm_model="weak")
    assert srv.last["model"] == "gpt-4o-mini" and "routellm_model" not in str(srv.last["messages"])
    assert events.decisions[-1].reason == "forced"


def test_structured_query_engine_routes_on_the_question(srv, events) -> None:  # noqa: F811
    index = VectorStoreIndex.from_documents(
        [Document(text=f"Paris proves the {HARD}."), Document(text="Rome has many fountains.")],
        embed_model=MockEmbedding(embed_dim=8),
    )
    llm, router = real(srv)
    engine = index.as_query_engine(llm=llm, output_cls=Capital, similarity_top_k=2)
    response = engine.query(EASY)
    assert response.response == Capital(city="gpt-4o-mini", population=7)
    assert router.seen == [EASY] and all(native(r) for r in srv.requests)
    assert {d.side for d in events.decisions} == {"weak"}


class RecordingLLM(ScriptedLLM):
    """Records which structured method of the inner model was called (and with which llm_kwargs)."""

    _structured: list = PrivateAttr(default_factory=list)

    def structured_predict(self, output_cls, prompt, llm_kwargs=None, **prompt_args):
        self._structured.append(("structured_predict", dict(llm_kwargs or {})))
        return super().structured_predict(output_cls, prompt, llm_kwargs=llm_kwargs, **prompt_args)


def test_the_inner_models_own_method_gets_clean_and_per_side_kwargs() -> None:
    strong = RecordingLLM(model_name="strong-model", responder=lambda q: '{"city": "A", "population": 1}')
    weak = RecordingLLM(model_name="weak-model", responder=lambda q: '{"city": "B", "population": 2}')
    strong.is_function_calling_model = weak.is_function_calling_model = False
    llm = RoutedLLM(
        strong=strong, weak=weak, router=KeywordRouter(), threshold=0.5, weak_kwargs={"temperature": 0.3}
    )
    out = llm.structured_predict(Capital, QA, llm_kwargs={"max_tokens": 9}, context_str="c", query_str=EASY)
    assert out == Capital(city="B", population=2)
    assert weak._structured == [("structured_predict", {"temperature": 0.3, "max_tokens": 9})]
    assert strong._structured == []
