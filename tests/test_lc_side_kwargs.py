"""Per-side call arguments: `seed=` (OpenAI only) and `top_k=` (Anthropic only) work whichever side is chosen,
sent only to the model that takes them, or fail with our own error naming the argument and the side; per-side
defaults with `strong_kwargs=`/`weak_kwargs=`. Real ChatOpenAI / ChatAnthropic against stub servers, both ways."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from lc_fakes import FakeAnthropicChat, FakeOpenAIChat, KeywordRouter, make_routed
from provider_stubs import StubAnthropic, StubOpenAI, anthropic_chat, openai_chat
from pydantic import ValidationError

from langchain_routellm import METADATA_KEY, RoutedChatModel
from langchain_routellm._params import UnsupportedCallArgumentError, call_params, register_call_params

pytest.importorskip("langchain_openai")
pytest.importorskip("langchain_anthropic")


@pytest.fixture
def stubs() -> Iterator[tuple[StubOpenAI, StubAnthropic]]:
    with StubOpenAI() as o, StubAnthropic() as a:
        yield o, a


def _pair(o: StubOpenAI, a: StubAnthropic, openai_strong: bool, **kw: Any) -> RoutedChatModel:
    """Both providers both ways: ChatOpenAI strong and ChatAnthropic weak, or the other way round."""
    gpt, claude = openai_chat(o, model="gpt-4o"), anthropic_chat(a)
    strong, weak = (gpt, claude) if openai_strong else (claude, gpt)
    return RoutedChatModel(strong=strong, weak=weak, router=KeywordRouter(), threshold=0.5, **kw)


def _prompt(m: RoutedChatModel, provider: str) -> str:
    """A prompt the router sends to `provider` ("openai" / "anthropic")."""
    strong_is_openai = type(m.strong).__name__ == "ChatOpenAI"
    return "a hard question" if (provider == "openai") == strong_is_openai else "an easy question"


def _call(m: RoutedChatModel, path: str, text: str, **kw: Any) -> Any:
    if path == "invoke":
        return m.invoke(text, **kw)
    if path == "ainvoke":
        return asyncio.run(m.ainvoke(text, **kw))
    chunks = list(m.stream(text, **kw))
    return sum(chunks[1:], chunks[0])


def test_the_problem_is_real(stubs: tuple[StubOpenAI, StubAnthropic]) -> None:
    """Without routing, the providers' own clients fail on the other's argument deep in their SDK."""
    o, a = stubs
    with pytest.raises(TypeError, match="seed"):
        anthropic_chat(a).invoke("hi", seed=1)
    with pytest.raises(TypeError, match="top_k"):
        openai_chat(o).invoke("hi", top_k=3)


@pytest.mark.parametrize("openai_strong", [True, False])
@pytest.mark.parametrize("path", ["invoke", "ainvoke", "stream"])
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_seed_and_top_k_succeed_on_either_side(
    stubs: tuple[StubOpenAI, StubAnthropic], openai_strong: bool, path: str, provider: str
) -> None:
    o, a = stubs
    m = _pair(o, a, openai_strong)
    answer = _call(m, path, _prompt(m, provider), seed=1, top_k=3)
    assert answer.response_metadata[METADATA_KEY]["model_name"] == (
        "gpt-4o" if provider == "openai" else "claude-3-5-haiku-latest"
    )
    if provider == "openai":
        (request,) = o.requests
        assert request["seed"] == 1 and "top_k" not in request
        assert not a.requests
    else:
        (request,) = a.requests
        assert request["top_k"] == 3 and "seed" not in request
        assert not o.requests


@pytest.mark.parametrize("openai_strong", [True, False])
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_raise_mode_fails_with_our_error_on_every_route(
    stubs: tuple[StubOpenAI, StubAnthropic], openai_strong: bool, provider: str
) -> None:
    o, a = stubs
    m = _pair(o, a, openai_strong, unsupported_call_args="raise")
    anthropic_side = "weak" if openai_strong else "strong"
    openai_side = "strong" if openai_strong else "weak"
    with pytest.raises(
        UnsupportedCallArgumentError,
        match=f"'seed' is not understood by the {anthropic_side} model ChatAnthropic",
    ):
        m.invoke(_prompt(m, provider), seed=1)
    with pytest.raises(
        UnsupportedCallArgumentError, match=f"'top_k' is not understood by the {openai_side} model ChatOpenAI"
    ):
        asyncio.run(m.ainvoke(_prompt(m, provider), top_k=1))
    with pytest.raises(UnsupportedCallArgumentError, match="'top_k'"):
        list(m.stream(_prompt(m, provider), top_k=1))
    assert not o.requests and not a.requests  # raised before any request
    assert m.invoke(_prompt(m, provider), temperature=0.2).content  # shared arguments are fine


@pytest.mark.parametrize("openai_strong", [True, False])
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_an_argument_no_model_takes_fails_the_same_on_every_route(
    stubs: tuple[StubOpenAI, StubAnthropic], openai_strong: bool, provider: str
) -> None:
    o, a = stubs
    m = _pair(o, a, openai_strong)
    with pytest.raises(UnsupportedCallArgumentError) as info:
        m.invoke(_prompt(m, provider), sed=1)
    message = str(info.value)
    assert "'sed' is not understood by any routed model" in message
    assert "the strong model" in message and "the weak model" in message
    assert "did you mean 'seed'" in message
    with pytest.raises(UnsupportedCallArgumentError) as other_route:
        m.invoke(_prompt(m, "anthropic" if provider == "openai" else "openai"), sed=1)
    assert str(other_route.value) == message  # the same error whichever side the router picks
    assert isinstance(info.value, TypeError)  # what Python itself raises for an unexpected keyword
    assert not o.requests and not a.requests


def test_error_reaches_callbacks_as_a_failed_run(stubs: tuple[StubOpenAI, StubAnthropic]) -> None:
    from langchain_core.callbacks import BaseCallbackHandler

    errors: list[BaseException] = []

    class Errors(BaseCallbackHandler):
        def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
            errors.append(error)

    o, a = stubs
    m = _pair(o, a, True)
    with pytest.raises(UnsupportedCallArgumentError):
        m.invoke("hard", config={"callbacks": [Errors()]}, nonsense=1)
    assert len(errors) == 1 and isinstance(errors[0], UnsupportedCallArgumentError)


@pytest.mark.parametrize("openai_strong", [True, False])
def test_per_side_defaults(stubs: tuple[StubOpenAI, StubAnthropic], openai_strong: bool) -> None:
    o, a = stubs
    openai_side, anthropic_side = ("strong", "weak") if openai_strong else ("weak", "strong")
    m = _pair(
        o,
        a,
        openai_strong,
        **{f"{openai_side}_kwargs": {"seed": 7}, f"{anthropic_side}_kwargs": {"top_k": 5}},
    )
    m.invoke(_prompt(m, "openai"))
    m.invoke(_prompt(m, "anthropic"))
    assert o.last["seed"] == 7 and a.last["top_k"] == 5
    m.invoke(_prompt(m, "openai"), seed=8)  # the call's own argument wins
    m.invoke(_prompt(m, "anthropic"), top_k=2)
    assert o.last["seed"] == 8 and a.last["top_k"] == 2
    assert "top_k" not in o.last and "seed" not in a.last


def test_router_level_defaults_sit_under_side_defaults(stubs: tuple[StubOpenAI, StubAnthropic]) -> None:
    o, a = stubs
    m = _pair(o, a, True, temperature=0.5, strong_kwargs={"temperature": 0.1})
    m.invoke("hard")
    m.invoke("easy")
    assert o.last["temperature"] == 0.1 and a.last["temperature"] == 0.5


@pytest.mark.parametrize("openai_strong", [True, False])
def test_per_side_defaults_are_checked_at_construction(
    stubs: tuple[StubOpenAI, StubAnthropic], openai_strong: bool
) -> None:
    o, a = stubs
    openai_side = "strong" if openai_strong else "weak"
    with pytest.raises(
        UnsupportedCallArgumentError,
        match=f"{openai_side}_kwargs sets 'top_k', which the {openai_side} model ChatOpenAI",
    ):
        _pair(o, a, openai_strong, **{f"{openai_side}_kwargs": {"top_k": 1}})
    with pytest.raises(ValidationError, match="cannot set tools"):
        _pair(o, a, openai_strong, strong_kwargs={"tools": []})


def test_call_params_of_the_real_classes() -> None:
    from langchain_anthropic import ChatAnthropic
    from langchain_openai import AzureChatOpenAI, ChatOpenAI

    gpt, claude = call_params(ChatOpenAI), call_params(ChatAnthropic)
    assert gpt is not None and claude is not None
    assert {"seed", "response_format", "logprobs", "stream_usage", "temperature"} <= gpt
    assert {"top_k", "top_p", "thinking", "temperature", "stream_usage"} <= claude
    assert "seed" not in claude and "top_k" not in gpt
    assert call_params(AzureChatOpenAI) == gpt  # subclasses count as their provider


def test_unknown_models_get_every_argument() -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    assert call_params(FakeListChatModel) is None
    m = make_routed(weak=FakeListChatModel(responses=["ok"]))
    assert m.invoke("easy", top_k=3, seed=1).content == "ok"  # nothing known, nothing dropped
    with pytest.raises(UnsupportedCallArgumentError):
        make_routed(unsupported_call_args="raise").invoke("easy", foo=1)


def test_register_call_params() -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    class Mine(FakeListChatModel):
        pass

    register_call_params(Mine, ["temperature", "mine_only"])
    try:
        m = make_routed(weak=Mine(responses=["ok"]), unsupported_call_args="raise")
        with pytest.raises(
            UnsupportedCallArgumentError, match="'mine_only' is not understood by the strong model"
        ):
            m.invoke("easy", mine_only=1)
        assert call_params(Mine) == frozenset({"temperature", "mine_only"})
    finally:
        from langchain_routellm import _params

        _params._REGISTERED.pop(Mine, None)
        call_params.cache_clear()


def test_fakes_follow_the_same_rule() -> None:
    m = make_routed()
    assert m.invoke("a hard question", seed=1, top_k=2).response_metadata[METADATA_KEY]["side"] == "strong"
    assert m.strong.calls[-1]["kwargs"] == {"seed": 1}
    m.invoke("easy", seed=1, top_k=2)
    assert m.weak.calls[-1]["kwargs"] == {"top_k": 2}
    assert FakeOpenAIChat.routellm_call_params - FakeAnthropicChat.routellm_call_params == {
        "seed",
        "response_format",
    }


def test_fallback_gets_its_own_arguments(stubs: tuple[StubOpenAI, StubAnthropic]) -> None:
    """A call that falls back is sent to the other model with that model's arguments only."""
    o, a = stubs
    m = _pair(o, a, True, fallback="other", weak_kwargs={"top_k": 4})
    o.fail_next(500)
    answer = m.invoke("a hard question", seed=3)
    assert answer.response_metadata[METADATA_KEY]["fallback_from"] == "strong"
    assert o.last["seed"] == 3
    assert a.last["top_k"] == 4 and "seed" not in a.last
