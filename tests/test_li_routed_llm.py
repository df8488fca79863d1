"""RoutedLLM: construction, metadata, the eight LLM endpoints, events, payloads, bad input, concurrency."""

from __future__ import annotations

import asyncio
import pickle
import threading

import pytest
from li_fakes import HARD, KeywordRouter, ScriptedLLM, events, make_pair, make_routed  # noqa: F401
from llama_index.core.base.llms.types import ChatMessage, ImageBlock, MessageRole, TextBlock
from llama_index.core.callbacks import CallbackManager, TokenCountingHandler
from llama_index.core.llms import MockLLM
from llama_index.core.prompts import PromptTemplate

from llamaindex_routellm import PAYLOAD_KEY, RoutedLLM, RoutingDecision
from routing_core import DEFAULT_ROUTER, RandomRouter
from routing_core.errors import UnknownRouterError


def user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=text)]


EASY = "What is the capital of France?"
HARD_Q = f"Prove the {HARD} about primes."


# -- construction --------------------------------------------------------------------------------------


def test_default_router_is_the_routing_core_default() -> None:
    strong, weak = make_pair()
    llm = RoutedLLM(strong=strong, weak=weak, threshold=0.5)
    assert llm.router == DEFAULT_ROUTER
    assert llm.get_router().name == DEFAULT_ROUTER


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "got neither"),
        ({"threshold": 0.5, "strong_fraction": 0.5}, "got both"),
        ({"threshold": 1.5}, r"threshold must be in \[0, 1\]"),
        ({"threshold": -0.1}, r"threshold must be in \[0, 1\]"),
        ({"threshold": float("nan")}, r"threshold must be in \[0, 1\]"),
        ({"threshold": True}, "threshold must be a number"),
        ({"strong_fraction": 2.0}, r"strong_fraction must be in \[0, 1\]"),
        ({"strong_fraction": -1}, r"strong_fraction must be in \[0, 1\]"),
    ],
)
def test_threshold_or_fraction_errors(kwargs: dict, match: str) -> None:
    strong, weak = make_pair()
    with pytest.raises(ValueError, match=match):
        RoutedLLM(strong=strong, weak=weak, router="random", **kwargs)


def test_strong_fraction_uses_router_calibration() -> None:
    strong, weak = make_pair()
    llm = RoutedLLM(strong=strong, weak=weak, router="random", strong_fraction=0.25)
    assert llm.threshold == pytest.approx(RandomRouter().threshold_for_strong_fraction(0.25)) == 0.75
    assert llm.strong_fraction == 0.25
    # about a quarter of many distinct questions go strong
    sides = [llm.route(f"question number {i}").side for i in range(2000)]
    assert 0.2 < sides.count("strong") / len(sides) < 0.3


def test_strong_fraction_without_reference_rates_is_a_clear_error() -> None:
    strong, weak = make_pair()
    with pytest.raises(ValueError, match="no reference win rates"):
        RoutedLLM(strong=strong, weak=weak, router=KeywordRouter(), strong_fraction=0.5)


def test_bad_router_and_models() -> None:
    strong, weak = make_pair()
    with pytest.raises(UnknownRouterError):
        RoutedLLM(strong=strong, weak=weak, router="no-such-router", threshold=0.5)
    with pytest.raises(TypeError, match="strong must be a llama_index LLM"):
        RoutedLLM(strong="gpt-4o", weak=weak, threshold=0.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="keyword arguments"):
        RoutedLLM(strong=strong, weak=weak, router=KeywordRouter(), router_kwargs={"seed": 1}, threshold=0.5)
    with pytest.raises(ValueError, match="'strong' or 'weak'"):
        RoutedLLM(strong=strong, weak=weak, threshold=0.5, no_text_side="both")  # type: ignore[arg-type]


def test_router_kwargs_reach_the_router() -> None:
    strong, weak = make_pair()
    a = RoutedLLM(strong=strong, weak=weak, router="random", router_kwargs={"seed": 1}, threshold=0.5)
    b = RoutedLLM(strong=strong, weak=weak, router="random", router_kwargs={"seed": 2}, threshold=0.5)
    assert a.get_router().seed == 1
    rates_a = [a.route(f"q{i}").win_rate for i in range(20)]
    rates_b = [b.route(f"q{i}").win_rate for i in range(20)]
    assert rates_a != rates_b


# -- metadata ------------------------------------------------------------------------------------------


def test_metadata_is_the_intersection_of_the_two_models() -> None:
    strong = ScriptedLLM(model_name="big", context_window=128000, num_output=4096)
    weak = ScriptedLLM(model_name="small", context_window=16000, num_output=1024)
    md = RoutedLLM(strong=strong, weak=weak, router="random", threshold=0.5).metadata
    assert md.context_window == 16000
    assert md.num_output == 1024
    assert md.is_chat_model is True
    assert md.is_function_calling_model is True
    assert "big" in md.model_name and "small" in md.model_name and "random" in md.model_name


def test_metadata_flags_need_both_models() -> None:
    strong = ScriptedLLM(model_name="big", is_function_calling_model=False)
    weak = ScriptedLLM(model_name="small", is_chat_model=False)
    md = RoutedLLM(strong=strong, weak=weak, router="random", threshold=0.5).metadata
    assert md.is_function_calling_model is False
    assert md.is_chat_model is False
    # a plain (non function-calling) LLM class never counts as function calling
    md2 = RoutedLLM(strong=MockLLM(), weak=ScriptedLLM(), router="random", threshold=0.5).metadata
    assert md2.is_function_calling_model is False


def test_metadata_unknown_sizes_do_not_win_the_minimum() -> None:
    # MockLLM reports num_output=-1 when max_tokens is unset: unknown, not "smaller"
    md = RoutedLLM(
        strong=MockLLM(), weak=ScriptedLLM(num_output=300), router="random", threshold=0.5
    ).metadata
    assert md.num_output == 300


# -- serialisation -------------------------------------------------------------------------------------


def test_to_dict_keeps_inner_models_and_round_trips() -> None:
    llm = RoutedLLM(
        strong=MockLLM(max_tokens=7), weak=MockLLM(max_tokens=3), router="random", strong_fraction=0.4
    )
    data = llm.to_dict()
    assert data["class_name"] == "RoutedLLM"
    assert data["strong"]["class_name"] == "MockLLM" and data["strong"]["max_tokens"] == 7
    assert data["weak"]["max_tokens"] == 3
    assert data["router"] == "random" and data["threshold"] == pytest.approx(0.6)
    assert data["strong_fraction"] == 0.4
    again = RoutedLLM.from_json(llm.to_json())
    assert isinstance(again.strong, MockLLM) and again.strong.max_tokens == 7
    assert again.threshold == llm.threshold
    assert again.route("abc").win_rate == llm.route("abc").win_rate


def test_from_dict_with_custom_inner_models() -> None:
    llm, strong, weak, _ = make_routed(router="random", threshold=0.3)
    data = llm.to_dict()
    assert data["strong"]["class_name"] == "ScriptedLLM" and data["strong"]["model_name"] == "strong-model"
    with pytest.raises(ValueError, match="pass it again"):
        RoutedLLM.from_dict(data)
    again = RoutedLLM.from_dict(data, strong=strong, weak=weak)
    assert again.threshold == 0.3 and again.strong is strong


def test_pickle_round_trip() -> None:
    llm = RoutedLLM(strong=MockLLM(max_tokens=4), weak=MockLLM(max_tokens=2), router="random", threshold=0.5)
    again = pickle.loads(pickle.dumps(llm))
    assert again.complete("x").text == llm.complete("x").text


# -- the eight endpoints -------------------------------------------------------------------------------


def _check_payload(response, side: str, model: str) -> None:
    payload = response.additional_kwargs[PAYLOAD_KEY]
    assert payload["side"] == side and payload["model_name"] == model
    assert payload["router"] == "keyword" and payload["threshold"] == 0.5
    assert payload["win_rate"] in (0.1, 0.9) and payload["reason"] == "router"


def test_sync_endpoints_route_and_tag(events) -> None:  # noqa: F811
    llm, strong, weak, router = make_routed()
    r = llm.chat(user(HARD_Q))
    assert r.message.content.startswith("[strong-model]")
    _check_payload(r, "strong", "strong-model")
    r = llm.complete(EASY)
    assert r.text.startswith("[weak-model]")
    _check_payload(r, "weak", "weak-model")
    chunks = list(llm.stream_chat(user(EASY)))
    assert len(chunks) > 1 and all(c.additional_kwargs[PAYLOAD_KEY]["side"] == "weak" for c in chunks)
    assert "".join(c.delta for c in chunks) == chunks[-1].message.content
    chunks = list(llm.stream_complete(HARD_Q))
    assert all(c.additional_kwargs[PAYLOAD_KEY]["side"] == "strong" for c in chunks)
    assert [c["method"] for c in strong.calls] == ["chat", "stream_complete"]
    assert [c["method"] for c in weak.calls] == ["complete", "stream_chat"]
    assert router.seen == [HARD_Q, EASY, EASY, HARD_Q]


async def test_async_endpoints_route_and_tag(events) -> None:  # noqa: F811
    llm, strong, weak, router = make_routed()
    r = await llm.achat(user(HARD_Q))
    _check_payload(r, "strong", "strong-model")
    r = await llm.acomplete(EASY)
    _check_payload(r, "weak", "weak-model")
    chunks = [c async for c in await llm.astream_chat(user(EASY))]
    assert len(chunks) > 1 and all(c.additional_kwargs[PAYLOAD_KEY]["side"] == "weak" for c in chunks)
    chunks = [c async for c in await llm.astream_complete(HARD_Q)]
    assert all(c.additional_kwargs[PAYLOAD_KEY]["side"] == "strong" for c in chunks)
    assert [c["method"] for c in strong.calls] == ["achat", "astream_complete"]
    assert [c["method"] for c in weak.calls] == ["acomplete", "astream_chat"]
    # the router ran in executor threads, not on the event loop's thread
    assert threading.get_ident() not in router.threads


def _consume(llm, method: str, text: str):
    if method == "chat":
        return llm.chat(user(text))
    if method == "complete":
        return llm.complete(text)
    if method == "stream_chat":
        return list(llm.stream_chat(user(text)))
    if method == "stream_complete":
        return list(llm.stream_complete(text))
    raise AssertionError(method)


async def _aconsume(llm, method: str, text: str):
    if method == "achat":
        return await llm.achat(user(text))
    if method == "acomplete":
        return await llm.acomplete(text)
    if method == "astream_chat":
        return [c async for c in await llm.astream_chat(user(text))]
    if method == "astream_complete":
        return [c async for c in await llm.astream_complete(text)]
    raise AssertionError(method)


def _assert_one_call(events, method: str, side: str, model: str) -> None:  # noqa: F811
    decisions, ends = events.decisions, events.ends
    assert len(decisions) == 1 and len(ends) == 1
    assert len(events.llm_starts()) == 1 and len(events.llm_ends()) == 1
    d = decisions[0]
    assert (d.call, d.side, d.model, d.router, d.threshold) == (method, side, model, "keyword", 0.5)
    assert ends[0].decision_id == d.decision_id and ends[0].status == "ok"
    assert ends[0].input_tokens > 0 and ends[0].output_tokens > 0
    # the LLM events are the answering model's, not the wrapper's
    start = events.llm_starts()[0]
    assert start.model_dict["model_name"] == model
    assert start.model_dict["class_name"] == "ScriptedLLM"


@pytest.mark.parametrize("method", ["chat", "complete", "stream_chat", "stream_complete"])
@pytest.mark.parametrize(("text", "side"), [(HARD_Q, "strong"), (EASY, "weak")])
def test_each_sync_call_emits_one_llm_event_and_one_routing_event(events, method, text, side) -> None:  # noqa: F811
    llm, *_ = make_routed()
    _consume(llm, method, text)
    _assert_one_call(events, method, side, f"{side}-model")


@pytest.mark.parametrize("method", ["achat", "acomplete", "astream_chat", "astream_complete"])
@pytest.mark.parametrize(("text", "side"), [(HARD_Q, "strong"), (EASY, "weak")])
async def test_each_async_call_emits_one_llm_event_and_one_routing_event(events, method, text, side) -> None:  # noqa: F811
    llm, *_ = make_routed()
    await _aconsume(llm, method, text)
    _assert_one_call(events, method, side, f"{side}-model")


def test_routing_event_comes_before_the_llm_event(events) -> None:  # noqa: F811
    llm, *_ = make_routed()
    llm.chat(user(EASY))
    names = [type(e).__name__ for e in events.events]
    assert names.index("RoutingDecisionEvent") < names.index("LLMChatStartEvent")
    assert names.index("LLMChatEndEvent") < names.index("RoutedCallEndEvent")


def test_provider_usage_is_preferred_over_estimates(events) -> None:  # noqa: F811
    llm, *_ = make_routed()
    llm.chat(user(EASY))
    assert events.ends[-1].usage_source == "provider"
    llm2, *_ = make_routed(report_usage=False)
    llm2.chat(user(EASY))
    assert events.ends[-1].usage_source == "estimate" and events.ends[-1].output_tokens > 0


# -- callbacks: TokenCountingHandler counts each call once ---------------------------------------------


def test_token_counting_handler_counts_once_per_call() -> None:
    counter = TokenCountingHandler()
    strong, weak = make_pair()
    llm = RoutedLLM(
        strong=strong,
        weak=weak,
        router=KeywordRouter(),
        threshold=0.5,
        callback_manager=CallbackManager([counter]),
    )
    assert strong.callback_manager is llm.callback_manager is weak.callback_manager
    llm.chat(user(HARD_Q))
    llm.complete(EASY)
    list(llm.stream_chat(user(EASY)))
    list(llm.stream_complete(HARD_Q))
    assert len(counter.llm_token_counts) == 4
    # the usage reported by the answering model is what gets counted
    from routing_core.costs import count_tokens

    assert counter.llm_token_counts[0].prompt_token_count == count_tokens(f"user: {HARD_Q}")
    assert all(c.completion_token_count > 0 for c in counter.llm_token_counts)


def test_assigning_callback_manager_reaches_inner_models() -> None:
    llm, strong, weak, _ = make_routed()
    own = strong.callback_manager
    counter = TokenCountingHandler()
    llm.callback_manager = CallbackManager([counter])  # what Settings and response synthesizers do
    assert strong.callback_manager is llm.callback_manager is weak.callback_manager
    assert strong.callback_manager is not own
    llm.chat(user(EASY))
    assert len(counter.llm_token_counts) == 1


def test_inner_callback_managers_are_kept_when_none_is_given() -> None:
    counter = TokenCountingHandler()
    strong = ScriptedLLM(model_name="s", callback_manager=CallbackManager([counter]))
    llm = RoutedLLM(strong=strong, weak=ScriptedLLM(model_name="w"), router=KeywordRouter(), threshold=0.5)
    assert strong.callback_manager.handlers == [counter]
    llm.chat(user(HARD_Q))
    assert len(counter.llm_token_counts) == 1


# -- forcing a side ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["chat", "complete", "stream_chat", "stream_complete"])
def test_force_side_per_call(events, method) -> None:  # noqa: F811
    llm, strong, weak, router = make_routed()
    kwargs = {"routellm_model": "strong"}
    if method == "chat":
        r = llm.chat(user(EASY), **kwargs)
    elif method == "complete":
        r = llm.complete(EASY, **kwargs)
    elif method == "stream_chat":
        r = list(llm.stream_chat(user(EASY), **kwargs))[-1]
    else:
        r = list(llm.stream_complete(EASY, **kwargs))[-1]
    payload = r.additional_kwargs[PAYLOAD_KEY]
    assert payload["side"] == "strong" and payload["reason"] == "forced" and payload["win_rate"] is None
    assert router.seen == []  # the router was not consulted
    assert len(strong.calls) == 1 and not weak.calls
    assert "routellm_model" not in strong.calls[0]["kwargs"]  # never leaks to the model
    assert events.decisions[0].reason == "forced"


async def test_force_side_async_and_bad_value() -> None:
    llm, strong, weak, _ = make_routed()
    r = await llm.achat(user(HARD_Q), routellm_model="weak")
    assert r.additional_kwargs[PAYLOAD_KEY]["side"] == "weak"
    with pytest.raises(ValueError, match="cannot force the routed model to"):
        llm.chat(user(EASY), routellm_model="gpt-4o")
    with pytest.raises(ValueError, match="cannot force the routed model to"):
        await llm.acomplete(EASY, routellm_model=1)
    assert len(strong.calls) == 0 and len(weak.calls) == 1


def test_route_method_has_no_side_effects(events) -> None:  # noqa: F811
    llm, strong, weak, _ = make_routed()
    d = llm.route(HARD_Q)
    assert isinstance(d, RoutingDecision) and d.side == "strong" and d.win_rate == 0.9
    assert not strong.calls and not weak.calls
    assert not events.events
    with pytest.raises(TypeError):
        llm.route(None)  # type: ignore[arg-type]


# -- what is routed on ---------------------------------------------------------------------------------


def test_chat_routes_on_last_user_message_not_system_context() -> None:
    llm, strong, weak, router = make_routed()
    messages = [
        ChatMessage(role="system", content=f"Context: a long {HARD} from retrieved documents."),
        ChatMessage(role="user", content=f"Earlier {HARD} question"),
        ChatMessage(role="assistant", content="Earlier answer"),
        ChatMessage(role="user", content=EASY),
    ]
    r = llm.chat(messages)
    assert r.additional_kwargs[PAYLOAD_KEY]["side"] == "weak"
    assert r.additional_kwargs[PAYLOAD_KEY]["source"] == "last_user_message"
    assert router.seen == [EASY]


def test_chat_without_user_text_goes_to_the_no_text_side() -> None:
    # the policy's rule, shared with LangChain: only user turns count; system/assistant text is not routed on
    llm, _, _, router = make_routed(no_text_side="weak")
    r = llm.chat([ChatMessage(role="system", content=f"Solve the {HARD}.")])
    payload = r.additional_kwargs[PAYLOAD_KEY]
    assert (payload["source"], payload["reason"], payload["side"]) == ("no_user_text", "no_text", "weak")
    assert router.seen == []


def test_multi_block_user_message_routes_on_its_text() -> None:
    llm, _, _, router = make_routed()
    msg = ChatMessage(
        role="user",
        blocks=[
            TextBlock(text="Look at this"),
            ImageBlock(url="https://example.com/x.png"),
            TextBlock(text=HARD),
        ],
    )
    r = llm.chat([msg])
    assert router.seen == [f"Look at this\n{HARD}"]
    assert r.additional_kwargs[PAYLOAD_KEY]["side"] == "strong"


def test_predict_routes_on_query_str_not_stuffed_prompt() -> None:
    llm, strong, weak, router = make_routed()
    qa = PromptTemplate("Context:\n{context_str}\nQuestion: {query_str}\nAnswer:")
    out = llm.predict(qa, context_str=f"A {HARD} and its proof.", query_str=EASY)
    assert out.startswith("[weak-model]")
    assert router.seen == [EASY]
    # the weak model still received the full prompt with the context
    assert HARD in weak.calls[0]["question"]


def test_predict_uses_partially_formatted_query_str() -> None:
    llm, _, _, router = make_routed()
    qa = PromptTemplate("Context:\n{context_str}\nQuestion: {query_str}\nAnswer:").partial_format(
        query_str=HARD_Q
    )
    assert llm.predict(qa, context_str="nothing hard here").startswith("[strong-model]")
    assert router.seen == [HARD_Q]


def test_predict_without_query_var_routes_on_formatted_prompt() -> None:
    llm, _, _, router = make_routed()
    out = llm.predict(PromptTemplate("Tell me about {topic}"), topic=HARD)
    assert out.startswith("[strong-model]")
    assert router.seen == [f"Tell me about {HARD}"]


def test_custom_route_template_vars() -> None:
    llm, _, _, router = make_routed(route_template_vars=("question", "query_str"))
    llm.predict(PromptTemplate("Chat: {chat_history}\nQ: {question}"), chat_history=HARD, question=EASY)
    assert router.seen == [EASY]


def test_predict_formats_for_the_chosen_model() -> None:
    # a completion model gets a completion prompt; a chat model gets messages
    strong = ScriptedLLM(model_name="strong-model", is_chat_model=True)
    weak = ScriptedLLM(model_name="weak-model", is_chat_model=False)
    llm = RoutedLLM(
        strong=strong, weak=weak, router=KeywordRouter(), threshold=0.5, system_prompt="Be brief."
    )
    qa = PromptTemplate("Q: {query_str}")
    llm.predict(qa, query_str=EASY)
    llm.predict(qa, query_str=HARD_Q)
    assert weak.calls[0]["method"] == "complete" and weak.calls[0]["question"].startswith("Be brief.")
    assert strong.calls[0]["method"] == "chat"


@pytest.mark.parametrize("mode", ["predict", "stream"])
def test_predict_and_stream_one_event_each(events, mode) -> None:  # noqa: F811
    llm, *_ = make_routed()
    qa = PromptTemplate("Context: {context_str}\nQ: {query_str}")
    if mode == "predict":
        out = llm.predict(qa, context_str=HARD, query_str=EASY)
    else:
        out = "".join(llm.stream(qa, context_str=HARD, query_str=EASY))
    assert out.startswith("[weak-model]")
    assert len(events.decisions) == 1 and len(events.llm_starts()) == 1
    assert events.decisions[0].source == "query_str"
    assert events.counts()["LLMPredictStartEvent"] == 1


@pytest.mark.parametrize("mode", ["apredict", "astream"])
async def test_apredict_and_astream_one_event_each(events, mode) -> None:  # noqa: F811
    llm, *_ = make_routed()
    qa = PromptTemplate("Context: {context_str}\nQ: {query_str}")
    if mode == "apredict":
        out = await llm.apredict(qa, context_str=EASY, query_str=HARD_Q)
    else:
        out = "".join([t async for t in await llm.astream(qa, context_str=EASY, query_str=HARD_Q)])
    assert out.startswith("[strong-model]")
    assert len(events.decisions) == 1 and len(events.llm_starts()) == 1
    assert events.decisions[0].source == "query_str"


def test_predict_force_side() -> None:
    llm, strong, weak, router = make_routed()
    out = llm.predict(PromptTemplate("Q: {query_str}"), query_str=HARD_Q, routellm_model="weak")
    assert out.startswith("[weak-model]") and router.seen == []
    assert "routellm_model" not in weak.calls[0]["question"]


def test_structured_predict_routes_on_query_str(events) -> None:  # noqa: F811
    from pydantic import BaseModel

    class Answer(BaseModel):
        text: str

    def respond(q: str) -> str:
        return '{"text": "ok"}'

    strong = ScriptedLLM(model_name="strong-model", responder=respond, is_function_calling_model=False)
    weak = ScriptedLLM(model_name="weak-model", responder=respond, is_function_calling_model=False)
    router = KeywordRouter()
    llm = RoutedLLM(strong=strong, weak=weak, router=router, threshold=0.5)
    qa = PromptTemplate("Context: {context_str}\nQ: {query_str}")
    out = llm.structured_predict(Answer, qa, context_str=HARD, query_str=EASY)
    assert out.text == "ok"
    assert router.seen == [EASY] and len(weak.calls) == 1 and not strong.calls
    assert len(events.decisions) == 1 and len(events.llm_starts()) == 1


async def test_astructured_predict_forced() -> None:
    from pydantic import BaseModel

    class Answer(BaseModel):
        text: str

    strong = ScriptedLLM(
        model_name="strong-model", responder=lambda q: '{"text": "s"}', is_function_calling_model=False
    )
    weak = ScriptedLLM(
        model_name="weak-model", responder=lambda q: '{"text": "w"}', is_function_calling_model=False
    )
    llm = RoutedLLM(strong=strong, weak=weak, router=KeywordRouter(), threshold=0.5)
    qa = PromptTemplate("Q: {query_str}")
    out = await llm.astructured_predict(Answer, qa, query_str=EASY, llm_kwargs={"routellm_model": "strong"})
    assert out.text == "s" and len(strong.calls) == 1


# -- bad input -----------------------------------------------------------------------------------------


def test_empty_messages_is_a_clear_error(events) -> None:  # noqa: F811
    llm, strong, weak, _ = make_routed()
    for call in (llm.chat, llm.stream_chat):
        with pytest.raises(ValueError, match="no messages"):
            call([])
    assert not strong.calls and not weak.calls
    assert not events.decisions and not events.ends and not events.llm_starts()


async def test_empty_messages_async() -> None:
    llm, strong, weak, _ = make_routed()
    with pytest.raises(ValueError, match="no messages"):
        await llm.achat([])
    with pytest.raises(ValueError, match="no messages"):
        await llm.astream_chat([])
    assert not strong.calls and not weak.calls


def test_malformed_inputs_are_type_errors() -> None:
    llm, *_ = make_routed()
    with pytest.raises(TypeError, match="not a single message"):
        llm.chat(ChatMessage(role="user", content="hi"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"messages\[1\] must be a ChatMessage"):
        llm.chat([ChatMessage(role="user", content="hi"), "oops"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="prompt must be a str"):
        llm.complete(None)  # type: ignore[arg-type]


def test_image_only_message_goes_to_no_text_side(events) -> None:  # noqa: F811
    llm, strong, weak, router = make_routed()
    image_only = [ChatMessage(role="user", blocks=[ImageBlock(url="https://example.com/cat.png")])]
    r = llm.chat(image_only)
    payload = r.additional_kwargs[PAYLOAD_KEY]
    assert payload["side"] == "strong" and payload["reason"] == "no_text" and payload["win_rate"] is None
    assert router.seen == [] and len(strong.calls) == 1
    assert events.decisions[0].reason == "no_text"
    # configurable
    llm2, strong2, weak2, _ = make_routed(no_text_side="weak")
    assert llm2.chat(image_only).additional_kwargs[PAYLOAD_KEY]["side"] == "weak"
    # blank text is treated the same way
    assert llm2.complete("   ").additional_kwargs[PAYLOAD_KEY]["reason"] == "no_text"


def test_inner_llm_error_propagates_with_events(events) -> None:  # noqa: F811
    strong, weak = make_pair()
    weak.error = RuntimeError("provider down")
    llm = RoutedLLM(strong=strong, weak=weak, router=KeywordRouter(), threshold=0.5)
    with pytest.raises(RuntimeError, match="provider down"):
        llm.chat(user(EASY))
    with pytest.raises(RuntimeError, match="provider down"):
        llm.stream_complete(EASY)
    assert not strong.calls  # no silent fallback to the other model
    assert len(events.decisions) == 2
    assert [e.status for e in events.ends] == ["error", "error"]
    assert "provider down" in events.ends[0].error
    assert events.ends[0].input_tokens == events.ends[0].output_tokens == 0


async def test_inner_llm_error_async() -> None:
    strong, weak = make_pair()
    strong.error = ConnectionError("timeout")
    llm = RoutedLLM(strong=strong, weak=weak, router=KeywordRouter(), threshold=0.5)
    with pytest.raises(ConnectionError):
        await llm.achat(user(HARD_Q))
    with pytest.raises(ConnectionError):
        await llm.astream_chat(user(HARD_Q))
    assert not weak.calls


def test_stream_failing_midway_reports_error(events) -> None:  # noqa: F811
    strong, weak = make_pair(error=RuntimeError("stream broke"), error_after_chunks=2)
    llm = RoutedLLM(strong=strong, weak=weak, router=KeywordRouter(), threshold=0.5)
    got = []
    with pytest.raises(RuntimeError, match="stream broke"):
        for chunk in llm.stream_chat(user(EASY)):
            got.append(chunk)
    assert len(got) == 2
    assert [e.status for e in events.ends] == ["error"]
    assert events.counts()["ExceptionEvent"] == 1  # emitted by the inner model's decorator, once


async def test_astream_failing_midway_reports_error(events) -> None:  # noqa: F811
    strong, weak = make_pair(error=RuntimeError("stream broke"), error_after_chunks=1)
    llm = RoutedLLM(strong=strong, weak=weak, router=KeywordRouter(), threshold=0.5)
    with pytest.raises(RuntimeError, match="stream broke"):
        async for _ in await llm.astream_complete(HARD_Q):
            pass
    assert [e.status for e in events.ends] == ["error"]


def test_stream_closed_early_is_cancelled(events) -> None:  # noqa: F811
    llm, *_ = make_routed()
    gen = llm.stream_chat(user(EASY))
    first = next(gen)
    gen.close()
    assert first.additional_kwargs[PAYLOAD_KEY]["side"] == "weak"
    assert [e.status for e in events.ends] == ["cancelled"]
    assert events.ends[0].output_tokens > 0


def test_router_failure_propagates() -> None:
    class Broken(KeywordRouter):
        def _win_rate(self, prompts):
            raise RuntimeError("router exploded")

    strong, weak = make_pair()
    llm = RoutedLLM(strong=strong, weak=weak, router=Broken(), threshold=0.5)
    with pytest.raises(RuntimeError, match="router exploded"):
        llm.chat(user(EASY))
    assert not strong.calls and not weak.calls


# -- concurrency ---------------------------------------------------------------------------------------


async def test_200_concurrent_achat_match_sequential_decisions() -> None:
    questions = [f"question {i}: {'why' if i % 3 else 'how'} does it work?" for i in range(200)]
    # sequential calls on one wrapper ...
    seq_llm, seq_strong, seq_weak, _ = make_routed(router="random", threshold=0.5)
    sequential = [seq_llm.chat(user(q)).additional_kwargs[PAYLOAD_KEY] for q in questions]
    # ... and the same 200 calls at once on another
    llm, strong, weak, _ = make_routed(router="random", threshold=0.5)
    responses = await asyncio.gather(*(llm.achat(user(q)) for q in questions))
    concurrent = [r.additional_kwargs[PAYLOAD_KEY] for r in responses]
    assert [c["side"] for c in concurrent] == [s["side"] for s in sequential]
    assert [c["win_rate"] for c in concurrent] == [s["win_rate"] for s in sequential]
    assert [llm.route(q).side for q in questions] == [s["side"] for s in sequential]
    # each response is the chosen model's answer to its own question
    for q, r, s in zip(questions, responses, sequential, strict=True):
        assert r.message.content == f"[{s['side']}-model] reply to: {q}"
    n_strong = sum(s["side"] == "strong" for s in sequential)
    assert 0 < n_strong < 200
    assert len(strong.calls) == len(seq_strong.calls) == n_strong
    assert len(weak.calls) == len(seq_weak.calls) == 200 - n_strong


async def test_concurrent_calls_do_not_block_the_event_loop() -> None:
    import time

    class Slow(KeywordRouter):
        def _win_rate(self, prompts):
            time.sleep(0.3)  # a heavy learned router
            return super()._win_rate(prompts)

    strong, weak = make_pair()
    llm = RoutedLLM(strong=strong, weak=weak, router=Slow(), threshold=0.5)
    ticks = 0
    done = False

    async def ticker() -> None:
        nonlocal ticks
        while not done:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    responses = await asyncio.gather(llm.achat(user(EASY)), llm.acomplete(HARD_Q))
    chunks = [c async for c in await llm.astream_chat(user(HARD_Q))]
    done = True
    await task
    assert [r.additional_kwargs[PAYLOAD_KEY]["side"] for r in responses] == ["weak", "strong"]
    assert chunks[-1].additional_kwargs[PAYLOAD_KEY]["side"] == "strong"
    # ~0.6 s of routing (two calls in parallel threads, then one): the loop kept ticking while the router
    # worked; a blocked loop shows ~0-2 ticks during the calls
    assert ticks >= 20


def test_message_roles_and_payload_do_not_leak_into_history() -> None:
    llm, *_ = make_routed()
    r = llm.chat(user(EASY))
    assert PAYLOAD_KEY not in r.message.additional_kwargs
    assert r.message.role == MessageRole.ASSISTANT
