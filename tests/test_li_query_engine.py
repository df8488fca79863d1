"""Query engines over a VectorStoreIndex (MockEmbedding): routing on the question, never on retrieved context."""

from __future__ import annotations

import pytest
from li_fakes import HARD, KeywordRouter, ScriptedLLM, events  # noqa: F401
from llama_index.core import Document, VectorStoreIndex, get_response_synthesizer
from llama_index.core.callbacks import CallbackManager, TokenCountingHandler
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.query_engine import RetrieverQueryEngine

from llamaindex_routellm import RoutedLLM

EASY = "Who maintains the lighthouse?"
HARD_Q = f"Which {HARD} does the lighthouse keeper prove?"

# every document mentions the keyword: a router looking at the stuffed prompt would always pick strong
DOCS = [
    Document(text=f"The lighthouse keeper, Ana, proves a {HARD} about tides every winter."),
    Document(text=f"The harbour office keeps the {HARD} archive and the ferry timetable."),
    Document(text=f"Fishermen say the old {HARD} predicts storms better than the radio."),
]

MODES = [
    "compact",
    "refine",
    "tree_summarize",
    "simple_summarize",
    "accumulate",
    "compact_accumulate",
    "generation",
]
STREAM_MODES = ["compact", "refine", "tree_summarize", "simple_summarize", "generation"]


@pytest.fixture(scope="module")
def index() -> VectorStoreIndex:
    return VectorStoreIndex.from_documents(DOCS, embed_model=MockEmbedding(embed_dim=8))


def routed(is_chat_model: bool = True) -> tuple[RoutedLLM, ScriptedLLM, ScriptedLLM, KeywordRouter]:
    strong = ScriptedLLM(model_name="strong-model", is_chat_model=is_chat_model)
    weak = ScriptedLLM(model_name="weak-model", is_chat_model=is_chat_model)
    router = KeywordRouter()
    return RoutedLLM(strong=strong, weak=weak, router=router, threshold=0.5), strong, weak, router


def check(events, llm, strong, weak, router, question: str, side: str) -> None:  # noqa: F811
    chosen, other = (strong, weak) if side == "strong" else (weak, strong)
    n = len(chosen.calls)
    assert n >= 1 and not other.calls
    # the router only ever saw the user's question
    assert router.seen == [question] * n
    # one routing event and one LLM event per model call, all on the question
    assert len(events.decisions) == len(events.llm_starts()) == len(events.llm_ends()) == n
    assert {(d.side, d.source, d.call) for d in events.decisions} <= {
        (side, "query_str", c)
        for c in ("chat", "achat", "complete", "acomplete", "stream_chat", "astream_chat")
    }
    assert all(e.status == "ok" for e in events.ends) and len(events.ends) == n


@pytest.mark.parametrize("mode", MODES)
def test_query_routes_on_query_str(index, events, mode) -> None:  # noqa: F811
    llm, strong, weak, router = routed()
    engine = index.as_query_engine(llm=llm, response_mode=mode, similarity_top_k=3)
    response = engine.query(EASY)
    assert "[weak-model]" in str(response)
    check(events, llm, strong, weak, router, EASY, "weak")
    if mode != "generation":
        # the prompt the weak model got is stuffed with context that would have routed it to strong
        stuffed = weak.calls[0]["question"]
        assert HARD in stuffed and EASY in stuffed
        assert llm.route(stuffed).side == "strong"


@pytest.mark.parametrize("mode", MODES)
async def test_aquery_routes_on_query_str(index, events, mode) -> None:  # noqa: F811
    llm, strong, weak, router = routed()
    engine = index.as_query_engine(llm=llm, response_mode=mode, similarity_top_k=3)
    response = await engine.aquery(HARD_Q)
    assert "[strong-model]" in str(response)
    check(events, llm, strong, weak, router, HARD_Q, "strong")


@pytest.mark.parametrize("mode", STREAM_MODES)
def test_streaming_query_routes_on_query_str(index, events, mode) -> None:  # noqa: F811
    llm, strong, weak, router = routed()
    engine = index.as_query_engine(llm=llm, response_mode=mode, similarity_top_k=3, streaming=True)
    response = engine.query(EASY)
    text = "".join(response.response_gen)
    assert "[weak-model]" in text
    check(events, llm, strong, weak, router, EASY, "weak")
    assert {d.call for d in events.decisions} == {"stream_chat"}


@pytest.mark.parametrize("mode", STREAM_MODES)
async def test_async_streaming_query_routes_on_query_str(index, events, mode) -> None:  # noqa: F811
    llm, strong, weak, router = routed()
    engine = index.as_query_engine(llm=llm, response_mode=mode, similarity_top_k=3, streaming=True)
    response = await engine.aquery(HARD_Q)
    text = "".join([t async for t in response.async_response_gen()])
    assert "[strong-model]" in text
    check(events, llm, strong, weak, router, HARD_Q, "strong")
    assert {d.call for d in events.decisions} == {"astream_chat"}


@pytest.mark.parametrize("mode", ["compact", "refine", "tree_summarize"])
def test_completion_models_route_on_query_str(index, events, mode) -> None:  # noqa: F811
    llm, strong, weak, router = routed(is_chat_model=False)
    engine = index.as_query_engine(llm=llm, response_mode=mode, similarity_top_k=3)
    assert "[weak-model]" in str(engine.query(EASY))
    check(events, llm, strong, weak, router, EASY, "weak")
    assert {c["method"] for c in weak.calls} == {"complete"}


def test_refine_makes_one_routed_call_per_chunk(index, events) -> None:  # noqa: F811
    llm, strong, weak, router = routed()
    engine = index.as_query_engine(llm=llm, response_mode="refine", similarity_top_k=3)
    engine.query(HARD_Q)
    assert len(strong.calls) == 3  # first answer + two refinements, all on the same side
    assert len(events.decisions) == 3


def test_mixed_chat_and_completion_models(index, events) -> None:  # noqa: F811
    strong = ScriptedLLM(model_name="strong-model", is_chat_model=True)
    weak = ScriptedLLM(model_name="weak-model", is_chat_model=False)
    router = KeywordRouter()
    llm = RoutedLLM(strong=strong, weak=weak, router=router, threshold=0.5)
    engine = index.as_query_engine(llm=llm, response_mode="compact", similarity_top_k=3)
    assert "[weak-model]" in str(engine.query(EASY))
    assert "[strong-model]" in str(engine.query(HARD_Q))
    assert weak.calls[0]["method"] == "complete" and strong.calls[0]["method"] == "chat"
    assert router.seen == [EASY, HARD_Q]


def test_context_chat_engine_routes_on_user_message(index, events) -> None:  # noqa: F811
    llm, strong, weak, router = routed()
    chat_engine = index.as_chat_engine(chat_mode="context", llm=llm, similarity_top_k=3)
    reply = chat_engine.chat(EASY)
    assert "[weak-model]" in str(reply)
    assert router.seen == [EASY]
    assert len(events.decisions) == len(events.llm_starts()) == 1
    # a chat-engine turn is routed once, on the user's message (issue 12)
    assert events.decisions[0].source == "turn_message" and events.decisions[0].turn_id


def test_token_counting_through_a_query_engine_counts_each_call_once(index, events) -> None:  # noqa: F811
    llm, strong, weak, router = routed()
    counter = TokenCountingHandler()
    synthesizer = get_response_synthesizer(
        llm=llm, response_mode="refine", callback_manager=CallbackManager([counter])
    )
    engine = RetrieverQueryEngine(index.as_retriever(similarity_top_k=3), response_synthesizer=synthesizer)
    engine.query(EASY)
    # the synthesizer hands its callback manager to the LLM; RoutedLLM passes it on to the inner models
    assert weak.callback_manager is llm.callback_manager
    assert len(counter.llm_token_counts) == len(weak.calls) == len(events.decisions) == 3
