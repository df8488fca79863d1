"""Tool calling through RoutedLLM: FunctionAgent, chat_with_tools, predict_and_call, tool-call parsing."""

from __future__ import annotations

import pytest
from li_fakes import HARD, KeywordRouter, ScriptedLLM, events  # noqa: F401
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, ChatResponse
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.tools import FunctionTool

from llamaindex_routellm import PAYLOAD_KEY, RoutedLLM

# FunctionAgent (llama-index-core) inspects pydantic objects and trips pydantic's own deprecation warnings
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect")


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


TOOLS = [FunctionTool.from_defaults(add), FunctionTool.from_defaults(multiply)]
EASY = "Compute 2 + 3 and 4 * 5, please."
HARD_Q = f"Compute 2 + 3 and 4 * 5, then state the {HARD}."


def plan(question: str, tools) -> list[tuple[str, dict]]:
    names = {t.metadata.name for t in tools}
    assert names == {"add", "multiply"}
    if "compute" in question.lower():
        return [("add", {"a": 2, "b": 3}), ("multiply", {"a": 4, "b": 5})]
    return []


class ParsingScriptedLLM(ScriptedLLM):
    """Counts how often it is asked to parse tool calls or validate a tool-calling response."""

    _parsed: int = PrivateAttr(default=0)
    _validated: int = PrivateAttr(default=0)

    def get_tool_calls_from_response(self, response, error_on_no_tool_call=True, **kwargs):
        self._parsed += 1
        return super().get_tool_calls_from_response(
            response, error_on_no_tool_call=error_on_no_tool_call, **kwargs
        )

    def _validate_chat_with_tools_response(self, response, tools, allow_parallel_tool_calls=False, **kwargs):
        self._validated += 1
        assert "routellm_decision" not in kwargs and "routellm_model" not in kwargs
        return response


def routed(**kwargs) -> tuple[RoutedLLM, ParsingScriptedLLM, ParsingScriptedLLM, KeywordRouter]:
    strong = ParsingScriptedLLM(model_name="strong-model", tool_caller=plan, **kwargs)
    weak = ParsingScriptedLLM(model_name="weak-model", tool_caller=plan, **kwargs)
    router = KeywordRouter()
    return RoutedLLM(strong=strong, weak=weak, router=router, threshold=0.5), strong, weak, router


@pytest.mark.parametrize("streaming", [True, False])
@pytest.mark.parametrize(("question", "side"), [(EASY, "weak"), (HARD_Q, "strong")])
async def test_function_agent_two_tools_through_routed_model(events, streaming, question, side) -> None:  # noqa: F811
    llm, strong, weak, router = routed()
    agent = FunctionAgent(tools=TOOLS, llm=llm, system_prompt="You are a calculator.", streaming=streaming)
    result = await agent.run(user_msg=question)
    chosen, other = (strong, weak) if side == "strong" else (weak, strong)
    # both tools ran and the chosen model wrote the final answer from their results
    text = str(result.response.content)
    assert text.startswith(f"[{side}-model]") and "5" in text and "20" in text
    assert [c.tool_name for c in result.tool_calls] == ["add", "multiply"]
    assert [c.tool_output.raw_output for c in result.tool_calls] == [5, 20]
    # every step of the run went to the same model; the other one was never asked anything
    assert not other.calls
    steps = [c for c in chosen.calls if c["method"] != "prepare_chat_with_tools"]
    assert len(steps) == 2
    assert [c["method"] for c in chosen.calls].count(
        "prepare_chat_with_tools"
    ) == 2  # tool formatting delegated
    assert chosen._parsed >= 2 and other._parsed == 0  # tool-call parsing delegated to the answering model
    # one routing event and one LLM event per step, routed on the user's question
    assert len(events.decisions) == len(events.llm_starts()) == len(events.ends) == 2
    assert {d.side for d in events.decisions} == {side}
    # one decision for the run (issue 12): the router read the user's question once; both steps share its turn
    assert router.seen == [question]
    assert len({d.turn_id for d in events.decisions}) == 1 and events.decisions[0].turn_id
    assert {d.source for d in events.decisions} == {"turn_message"}
    expected_call = "astream_chat" if streaming else "achat"
    assert {d.call for d in events.decisions} == {expected_call}


async def test_function_agent_rejects_a_pair_without_function_calling() -> None:
    strong = ScriptedLLM(model_name="strong-model", tool_caller=plan)
    weak = ScriptedLLM(model_name="weak-model", tool_caller=plan, is_function_calling_model=False)
    llm = RoutedLLM(strong=strong, weak=weak, router=KeywordRouter(), threshold=0.5)
    assert llm.metadata.is_function_calling_model is False
    agent = FunctionAgent(tools=TOOLS, llm=llm)
    # our error, naming the side without function calling (not LlamaIndex's "LLM must be a FunctionCallingLLM")
    with pytest.raises(
        ValueError, match=r"weak model \(weak-model, ScriptedLLM\) does not support function calling"
    ):
        await agent.run(user_msg=EASY)
    assert not strong.calls and not weak.calls


def test_chat_with_tools_and_parsing_delegate_to_the_answering_model(events) -> None:  # noqa: F811
    llm, strong, weak, router = routed()
    response = llm.chat_with_tools(TOOLS, user_msg=HARD_Q, allow_parallel_tool_calls=True)
    assert response.additional_kwargs[PAYLOAD_KEY]["side"] == "strong"
    assert response.additional_kwargs[PAYLOAD_KEY]["source"] == "user_msg"
    calls = llm.get_tool_calls_from_response(response, error_on_no_tool_call=True)
    assert [(c.tool_name, c.tool_kwargs) for c in calls] == [
        ("add", {"a": 2, "b": 3}),
        ("multiply", {"a": 4, "b": 5}),
    ]
    assert strong._parsed == 1 and weak._parsed == 0
    assert strong._validated == 1 and weak._validated == 0
    assert [c["method"] for c in strong.calls] == ["prepare_chat_with_tools", "chat"]
    assert strong.calls[1]["tools"] == ["add", "multiply"]
    assert not weak.calls
    assert len(events.decisions) == len(events.llm_starts()) == 1


def test_chat_with_tools_routes_on_last_user_message_of_history() -> None:
    llm, strong, weak, router = routed()
    history = [
        ChatMessage(role="system", content=f"Tools and a {HARD} in the system prompt."),
        ChatMessage(role="user", content=EASY),
    ]
    response = llm.chat_with_tools(TOOLS, chat_history=history)
    assert response.additional_kwargs[PAYLOAD_KEY]["side"] == "weak"
    assert router.seen == [EASY]


def test_chat_with_tools_forced_side_and_extra_kwargs_pass_through() -> None:
    llm, strong, weak, router = routed()
    llm.chat_with_tools(TOOLS, user_msg=EASY, routellm_model="strong", tool_choice="add")
    assert router.seen == []
    assert strong.calls[0]["method"] == "prepare_chat_with_tools"
    assert strong.calls[0]["kwargs"] == {"tool_choice": "add"}
    assert strong.calls[1]["kwargs"] == {"tool_choice": "add"}  # routing kwargs never reach the model


def test_stream_chat_with_tools(events) -> None:  # noqa: F811
    llm, strong, weak, _ = routed()
    chunks = list(llm.stream_chat_with_tools(TOOLS, user_msg=EASY))
    assert chunks and all(c.additional_kwargs[PAYLOAD_KEY]["side"] == "weak" for c in chunks)
    assert [c.tool_name for c in llm.get_tool_calls_from_response(chunks[-1])] == ["add", "multiply"]
    assert weak._parsed == 1
    assert len(events.decisions) == len(events.llm_starts()) == 1


async def test_achat_with_tools_runs_router_off_loop(events) -> None:  # noqa: F811
    import threading

    llm, strong, weak, router = routed()
    response = await llm.achat_with_tools(TOOLS, user_msg=HARD_Q)
    assert response.additional_kwargs[PAYLOAD_KEY]["side"] == "strong"
    assert threading.get_ident() not in router.threads
    assert len(events.decisions) == 1


def test_tool_calls_on_a_response_not_made_by_the_wrapper() -> None:
    llm, strong, weak, _ = routed()
    empty = ChatResponse(message=ChatMessage(role="assistant", content=""))
    # documented: responses without a routing payload are parsed by the strong model
    assert llm.get_tool_calls_from_response(empty, error_on_no_tool_call=False) == []
    assert strong._parsed == 1
    bad = ChatResponse(
        message=ChatMessage(role="assistant"), additional_kwargs={PAYLOAD_KEY: {"side": "medium"}}
    )
    with pytest.raises(ValueError, match="malformed"):
        llm.get_tool_calls_from_response(bad)


def test_tools_on_a_model_without_function_calling_is_a_clear_error(events) -> None:  # noqa: F811
    strong = ScriptedLLM(model_name="strong-model", tool_caller=plan, is_function_calling_model=False)
    weak = ScriptedLLM(model_name="weak-model", tool_caller=plan)
    llm = RoutedLLM(strong=strong, weak=weak, router=KeywordRouter(), threshold=0.5)
    with pytest.raises(ValueError, match="does not support function calling"):
        llm.chat_with_tools(TOOLS, user_msg=HARD_Q)
    assert not strong.calls and not events.decisions
    # the weak side still works
    assert llm.chat_with_tools(TOOLS, user_msg=EASY).additional_kwargs[PAYLOAD_KEY]["side"] == "weak"


def test_tools_with_no_message_is_a_clear_error() -> None:
    llm, strong, weak, _ = routed()
    with pytest.raises(ValueError, match="no user_msg and no chat_history"):
        llm.chat_with_tools(TOOLS)
    assert not strong.calls and not weak.calls


@pytest.mark.parametrize(("question", "side"), [(EASY, "weak"), (HARD_Q, "strong")])
def test_predict_and_call(events, question, side) -> None:  # noqa: F811
    llm, strong, weak, router = routed()
    result = llm.predict_and_call(TOOLS, user_msg=question, allow_parallel_tool_calls=True)
    assert result.response == "5\n\n20"
    assert [s.raw_output for s in result.sources] == [5, 20]
    assert result.metadata[PAYLOAD_KEY]["side"] == side
    assert router.seen == [question]
    assert len(events.decisions) == len(events.llm_starts()) == 1
    chosen = strong if side == "strong" else weak
    assert chosen._parsed == 1


async def test_apredict_and_call(events) -> None:  # noqa: F811
    llm, strong, weak, router = routed()
    result = await llm.apredict_and_call(TOOLS, user_msg=HARD_Q, allow_parallel_tool_calls=True)
    assert result.response == "5\n\n20" and result.metadata[PAYLOAD_KEY]["side"] == "strong"
    assert len(events.decisions) == 1 and not weak.calls


def test_predict_and_call_react_fallback_uses_one_pinned_decision(events) -> None:  # noqa: F811
    react = 'Thought: I need to use a tool.\nAction: add\nAction Input: {"a": 2, "b": 3}'
    strong = ScriptedLLM(
        model_name="strong-model", responder=lambda q: react, is_function_calling_model=False
    )
    weak = ScriptedLLM(model_name="weak-model", responder=lambda q: react, is_function_calling_model=False)
    router = KeywordRouter()
    llm = RoutedLLM(strong=strong, weak=weak, router=router, threshold=0.5)
    result = llm.predict_and_call(TOOLS, user_msg=HARD_Q, routellm_model="weak")
    assert result.response == "5"
    assert result.metadata[PAYLOAD_KEY]["side"] == "weak"
    assert result.metadata[PAYLOAD_KEY]["reason"] == "forced"
    assert not strong.calls and len(weak.calls) == 1
    assert router.seen == []  # the pinned (forced) decision was used, not a fresh one on the ReAct prompt
    assert len(events.decisions) == len(events.llm_starts()) == 1
