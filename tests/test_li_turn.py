"""One routing decision per turn (issue 12): real agents and chat engines, routed once on the user's message.

ReActAgent and FunctionAgent runs, CondensePlusContextChatEngine and CondenseQuestionChatEngine turns over a small
VectorStoreIndex (MockEmbedding): every LLM call of a turn goes to one side, the router reads the user's message
once, and the next turn is decided afresh. `route_per="call"` restores call-by-call routing.
"""

from __future__ import annotations

import asyncio

import pytest
from li_fakes import HARD, KeywordRouter, ScriptedLLM, events  # noqa: F401
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent, ReActAgent
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from llama_index.core.workflow import Context

from llamaindex_routellm import PAYLOAD_KEY, RoutedLLM, current_turn, routed_turn
from routing_core.policy import text_fingerprint

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect")

EASY = "Who keeps the lighthouse?"
HARD_Q = f"Which {HARD} does the lighthouse keeper prove?"


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


TOOLS = [FunctionTool.from_defaults(add)]


def routed(**kw):
    llm_kw = {
        k: kw.pop(k) for k in list(kw) if k in ("responder", "tool_caller", "is_function_calling_model")
    }
    strong = ScriptedLLM(model_name="strong-model", **llm_kw)
    weak = ScriptedLLM(model_name="weak-model", **llm_kw)
    router = KeywordRouter()
    return RoutedLLM(strong=strong, weak=weak, router=router, threshold=0.5, **kw), strong, weak, router


def one_turn(events, question: str, side: str) -> str:  # noqa: F811
    """Every routed call of the collected events went to `side` under one turn decided on `question`."""
    decisions = events.decisions
    assert decisions, "no routed call"
    assert {d.side for d in decisions} == {side}
    assert {d.turn_id for d in decisions} != {None} and len({d.turn_id for d in decisions}) == 1
    assert {(d.source, d.win_rate) for d in decisions} == {("turn_message", 0.9 if side == "strong" else 0.1)}
    assert len({d.decision_id for d in decisions}) == len(decisions)  # one event pair per call, as before
    assert {d.text_hash for d in decisions} == {text_fingerprint(question)[0]}  # routed on the question
    return decisions[0].turn_id


# -- ReActAgent ---------------------------------------------------------------------------------------------

ACTION = 'Thought: I need a tool.\nAction: add\nAction Input: {"a": 2, "b": 3}'
ANSWER = "Thought: I can answer without using any more tools.\nAnswer: the sum is 5"


def react_script(question: str) -> str:
    # ReAct's formatter adds each tool observation as a *user* message: it is the "question" a model sees next
    return ANSWER if question.startswith("Observation") else ACTION


@pytest.mark.parametrize("streaming", [False, True])
async def test_react_agent_run_is_one_decision_on_the_question(events, streaming: bool) -> None:  # noqa: F811
    llm, strong, weak, router = routed(responder=react_script)
    agent = ReActAgent(tools=TOOLS, llm=llm, streaming=streaming)
    result = await agent.run(user_msg=HARD_Q)
    assert "the sum is 5" in str(result.response.content)
    assert [c.tool_output.raw_output for c in result.tool_calls] == [5]
    # two reasoning steps, both on the strong model: the observation step is not routed on 'Observation: 5'
    assert len(strong.calls) == 2 and not weak.calls
    assert strong.calls[1]["question"].startswith("Observation")
    assert router.seen == [HARD_Q]
    one_turn(events, HARD_Q, "strong")
    assert len(events.decisions) == len(events.ends) == 2


async def test_react_agent_route_per_call_routes_each_step(events) -> None:  # noqa: F811
    # the knob: every step routed on its own text (the observation goes to the weak model)
    llm, strong, weak, router = routed(responder=react_script, route_per="call")
    result = await ReActAgent(tools=TOOLS, llm=llm, streaming=False).run(user_msg=HARD_Q)
    assert "the sum is 5" in str(result.response.content)
    assert len(strong.calls) == 1 and len(weak.calls) == 1
    assert router.seen == [HARD_Q, "Observation: 5"]
    assert {d.turn_id for d in events.decisions} == {None}


async def test_react_agent_second_run_is_decided_afresh(events) -> None:  # noqa: F811
    llm, strong, weak, router = routed(responder=react_script)
    agent = ReActAgent(tools=TOOLS, llm=llm, streaming=False)
    ctx = Context(agent)
    await agent.run(user_msg=HARD_Q, ctx=ctx)
    first = one_turn(events, HARD_Q, "strong")
    events.clear()
    await agent.run(user_msg=EASY, ctx=ctx)  # same memory: the history holds the hard question
    second = one_turn(events, EASY, "weak")
    assert first != second
    assert router.seen == [HARD_Q, EASY]
    assert len(strong.calls) == 2 and len(weak.calls) == 2


# -- FunctionAgent ----------------------------------------------------------------------------------------


def tool_plan(question: str, tools) -> list:
    return [("add", {"a": 2, "b": 3})]


@pytest.mark.parametrize("streaming", [False, True])
async def test_function_agent_runs_are_one_decision_each(events, streaming: bool) -> None:  # noqa: F811
    llm, strong, weak, router = routed(tool_caller=tool_plan)
    agent = FunctionAgent(tools=TOOLS, llm=llm, streaming=streaming)
    ctx = Context(agent)
    result = await agent.run(user_msg=HARD_Q, ctx=ctx)
    assert [c.tool_output.raw_output for c in result.tool_calls] == [5]
    first = one_turn(events, HARD_Q, "strong")
    assert len(events.decisions) == 2 and not weak.calls
    events.clear()
    await agent.run(user_msg=EASY, ctx=ctx)
    second = one_turn(events, EASY, "weak")
    assert first != second and router.seen == [HARD_Q, EASY]


async def test_concurrent_agent_runs_keep_their_own_turns(events) -> None:  # noqa: F811
    llm, strong, weak, router = routed(tool_caller=tool_plan)
    agent = FunctionAgent(tools=TOOLS, llm=llm, streaming=False)
    questions = [HARD_Q if i % 2 else EASY for i in range(6)]
    await asyncio.gather(*(agent.run(user_msg=q) for q in questions))
    by_turn: dict[str, set] = {}
    for d in events.decisions:
        by_turn.setdefault(d.turn_id, set()).add((d.side, d.text_preview))
    assert len(by_turn) == 6 and all(len(v) == 1 for v in by_turn.values())
    assert sorted(router.seen) == sorted(questions)
    assert len(strong.calls) == len(weak.calls)  # prepare + 2 steps for each of 3 runs per side


async def test_agent_run_without_user_msg_routes_on_the_history(events) -> None:  # noqa: F811
    llm, strong, weak, router = routed(tool_caller=tool_plan)
    history = [ChatMessage(role="user", content=HARD_Q)]
    await FunctionAgent(tools=TOOLS, llm=llm, streaming=False).run(chat_history=history)
    one_turn(events, HARD_Q, "strong")
    assert router.seen == [HARD_Q]


# -- chat engines over a VectorStoreIndex ----------------------------------------------------------------

DOCS = [
    Document(text="The lighthouse keeper, Ana, proves a theorem about tides every winter."),
    Document(text="The harbour office keeps the ferry timetable."),
]


@pytest.fixture(scope="module")
def index() -> VectorStoreIndex:
    return VectorStoreIndex.from_documents(DOCS, embed_model=MockEmbedding(embed_dim=8))


def condensing(question: str) -> str:
    return question  # the scripted "condensed question" is the model's reply


@pytest.mark.parametrize("mode", ["chat", "stream_chat", "achat", "astream_chat"])
async def test_condense_plus_context_turns(index, events, mode: str) -> None:  # noqa: F811
    llm, strong, weak, router = routed()
    engine = index.as_chat_engine(chat_mode="condense_plus_context", llm=llm, similarity_top_k=1)

    async def ask(q: str) -> str:
        if mode == "chat":
            return str(engine.chat(q))
        if mode == "achat":
            return str(await engine.achat(q))
        if mode == "stream_chat":
            r = engine.stream_chat(q)
            return "".join(r.response_gen)
        r = await engine.astream_chat(q)
        return "".join([t async for t in r.async_response_gen()])

    assert "[strong-model]" in await ask(HARD_Q)
    first = one_turn(events, HARD_Q, "strong")
    events.clear()
    strong.reset_calls()
    # turn 2: the condense complete() call gets the history (with the hard question) stuffed in its prompt;
    # it is still routed on this turn's message, like the answer
    assert "[weak-model]" in await ask(EASY)
    methods = [c["method"] for c in weak.calls]
    assert any("complete" in m for m in methods) and any("chat" in m for m in methods)
    assert HARD in weak.calls[0]["question"]  # the condense prompt held the hard history...
    assert not strong.calls  # ...and did not go strong
    second = one_turn(events, EASY, "weak")
    assert first != second and router.seen == [HARD_Q, EASY]


def test_condense_plus_context_route_per_call_splits_the_turn(index, events) -> None:  # noqa: F811
    llm, strong, weak, router = routed(route_per="call")
    engine = index.as_chat_engine(chat_mode="condense_plus_context", llm=llm, similarity_top_k=1)
    engine.chat(HARD_Q)
    strong.reset_calls()
    engine.chat(EASY)
    # the old behaviour, kept behind the knob: condense (history-stuffed prompt) strong, answer weak
    assert [c["method"] for c in strong.calls] == ["complete"]
    assert [c["method"] for c in weak.calls] == ["chat"]


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_condense_question_turns_need_no_route_template_vars(index, events, asynchronous: bool) -> None:  # noqa: F811
    llm, strong, weak, router = routed()
    engine = index.as_chat_engine(chat_mode="condense_question", llm=llm, similarity_top_k=1)
    if asynchronous:
        await engine.achat(HARD_Q)
    else:
        engine.chat(HARD_Q)
    one_turn(events, HARD_Q, "strong")
    events.clear()
    strong.reset_calls()
    reply = await engine.achat(EASY) if asynchronous else engine.chat(EASY)
    assert "[weak-model]" in str(reply)
    # condense predict (history with the hard question) and the query's synthesis: both weak, one decision
    assert len(weak.calls) >= 2 and not strong.calls
    one_turn(events, EASY, "weak")
    assert router.seen == [HARD_Q, EASY]


def test_simple_and_context_chat_engines_are_turns_too(index, events) -> None:  # noqa: F811
    llm, strong, weak, router = routed()
    for mode in ("simple", "context"):
        events.clear()
        index.as_chat_engine(chat_mode=mode, llm=llm).chat(HARD_Q)
        one_turn(events, HARD_Q, "strong")


# -- routed_turn and the rules inside a turn ---------------------------------------------------------------


def test_routed_turn_groups_calls_of_your_own_code(events) -> None:  # noqa: F811
    llm, strong, weak, router = routed()
    with routed_turn(HARD_Q) as turn:
        assert current_turn() is turn
        plan = llm.complete(f"Plan how to answer: {HARD_Q}").text
        answer = llm.complete(f"{plan}\n\nNow answer briefly (easy).")
        qa = PromptTemplate("Context: {context_str}\nQuestion: {query_str}")
        llm.predict(qa, context_str="ctx", query_str="an easy one")
    assert current_turn() is None
    assert answer.additional_kwargs[PAYLOAD_KEY]["turn_id"] == turn.turn_id
    one_turn(events, HARD_Q, "strong")
    assert router.seen == [HARD_Q] and len(events.decisions) == 3
    # outside the turn: routed call by call again
    events.clear()
    llm.complete(EASY)
    assert events.decisions[0].turn_id is None and events.decisions[0].side == "weak"


def test_routed_turn_without_a_message_lets_the_first_call_decide(events) -> None:  # noqa: F811
    llm, strong, weak, router = routed()
    with routed_turn():
        llm.chat([ChatMessage(role="user", content=EASY)])
        llm.chat([ChatMessage(role="user", content=HARD_Q)])
    assert {d.side for d in events.decisions} == {"weak"} and router.seen == [EASY]
    assert events.decisions[0].source == "last_user_message"


def test_forced_calls_inside_a_turn_are_forced_for_that_call_only(events) -> None:  # noqa: F811
    llm, strong, weak, router = routed()
    with routed_turn(EASY):
        llm.complete("a", routellm_model="strong")
        llm.complete("b")
    assert [(d.side, d.reason) for d in events.decisions] == [("strong", "forced"), ("weak", "router")]
    assert events.decisions[0].turn_id is None and events.decisions[1].turn_id


def test_nested_turns_join_the_outer_one_and_llms_decide_separately(index, events) -> None:  # noqa: F811
    llm, strong, weak, router = routed()
    other, _, _, other_router = routed()
    engine = index.as_chat_engine(chat_mode="simple", llm=llm)
    with routed_turn(HARD_Q) as outer:
        engine.chat(EASY)  # a chat engine inside the block follows the block's turn
        other.complete("anything")
    assert {d.turn_id for d in events.decisions} == {outer.turn_id}
    assert {d.side for d in events.decisions} == {"strong"}
    assert router.seen == [HARD_Q] and other_router.seen == [HARD_Q]


def test_route_does_not_join_a_turn() -> None:
    llm, strong, weak, router = routed()
    with routed_turn(HARD_Q):
        assert llm.route(EASY).side == "weak"
        assert llm.route(EASY).turn_id is None


async def test_concurrent_calls_of_one_turn_make_one_decision(events) -> None:  # noqa: F811
    llm, strong, weak, router = routed()
    with routed_turn(HARD_Q):
        await asyncio.gather(*(llm.acomplete(f"part {i}") for i in range(20)))
    assert router.seen == [HARD_Q] and len(strong.calls) == 20
    events.clear()
    router.seen.clear()
    import contextvars
    from concurrent.futures import ThreadPoolExecutor

    with routed_turn(EASY):
        ctxs = [contextvars.copy_context() for _ in range(16)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda c: c.run(llm.complete, "x"), ctxs))
    assert router.seen == [EASY] and {d.side for d in events.decisions} == {"weak"}
