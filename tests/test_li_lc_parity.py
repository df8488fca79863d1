"""Both wrappers share one routing policy: the same prompt, router and threshold give the same payload."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from lc_fakes import FakeAnthropicChat, FakeOpenAIChat
from llama_index.core.base.llms.types import ChatMessage, ImageBlock, TextBlock

import routing_core
from langchain_routellm import METADATA_KEY, RoutedChatModel
from llamaindex_routellm import PAYLOAD_KEY, RoutedLLM
from llamaindex_routellm.testing import ScriptedLLM
from routing_core import RandomRouter

PROMPTS = [
    "What is the capital of France?",
    "Prove that there are infinitely many primes.",
    "Write a haiku about autumn.",
    "Compare quicksort and mergesort in the worst case.",
    "hi",
    "Summarize the causes of World War I in three bullet points, with dates.",
]


def _pair(threshold: float = 0.5, **kw: Any) -> tuple[RoutedChatModel, RoutedLLM]:
    router = RandomRouter(seed=3)
    lc = RoutedChatModel(
        strong=FakeOpenAIChat(), weak=FakeAnthropicChat(), router=router, threshold=threshold, **kw
    )
    li_kw = {"no_text_side": kw["no_text_model"]} if "no_text_model" in kw else {}
    li = RoutedLLM(
        strong=ScriptedLLM(model_name=lc.model_names["strong"]),
        weak=ScriptedLLM(model_name=lc.model_names["weak"]),
        router=router,
        threshold=threshold,
        **li_kw,  # type: ignore[arg-type]
    )
    return lc, li


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.8])
def test_same_prompt_router_and_threshold_give_the_same_payload(threshold: float) -> None:
    lc, li = _pair(threshold)
    sides = set()
    for prompt in PROMPTS:
        a = lc.invoke([SystemMessage("Be brief."), HumanMessage(prompt)]).response_metadata[METADATA_KEY]
        b = li.chat(
            [ChatMessage(role="system", content="Be brief."), ChatMessage(role="user", content=prompt)]
        )
        payload = b.additional_kwargs[PAYLOAD_KEY]
        assert tuple(a) == tuple(payload) == routing_core.PAYLOAD_KEYS
        assert a == payload, prompt
        sides.add(a["side"])
    if threshold == 0.5:
        assert sides == {"strong", "weak"}  # both branches of the rule were compared


async def test_async_paths_agree_too() -> None:
    lc, li = _pair()
    for prompt in PROMPTS:
        a = (await lc.ainvoke(prompt)).response_metadata[METADATA_KEY]
        b = (await li.achat([ChatMessage(role="user", content=prompt)])).additional_kwargs[PAYLOAD_KEY]
        assert a == b


def test_fallback_rule_forced_side_and_no_text_agree() -> None:
    lc, li = _pair(no_text_model="weak")
    # the last user turn has only an image: both route on the earlier user text
    lc_msgs = [
        HumanMessage(PROMPTS[1]),
        AIMessage("ok"),
        HumanMessage([{"type": "image_url", "image_url": {"url": "https://example.com/x.png"}}]),
    ]
    li_msgs = [
        ChatMessage(role="user", content=PROMPTS[1]),
        ChatMessage(role="assistant", content="ok"),
        ChatMessage(role="user", blocks=[ImageBlock(url="https://example.com/x.png")]),
    ]
    a = lc.invoke(lc_msgs).response_metadata[METADATA_KEY]
    b = li.chat(li_msgs).additional_kwargs[PAYLOAD_KEY]
    assert a == b and a["source"] == "earlier_user_message" and a["reason"] == "router"
    # no user text at all: the no-text side, router not consulted
    a = lc.invoke([SystemMessage("system only")]).response_metadata[METADATA_KEY]
    b = li.chat([ChatMessage(role="system", content="system only")]).additional_kwargs[PAYLOAD_KEY]
    assert a == b and (a["side"], a["reason"], a["source"]) == ("weak", "no_text", "no_user_text")
    # the same forcing keyword in both wrappers
    a = lc.invoke(PROMPTS[0], routellm_model="strong").response_metadata[METADATA_KEY]
    b = li.chat([ChatMessage(role="user", content=PROMPTS[0])], routellm_model="strong")
    assert a == b.additional_kwargs[PAYLOAD_KEY] and a["reason"] == "forced" and a["source"] == "caller"
    # multi-block text is joined the same way
    a = lc.invoke([HumanMessage([{"type": "text", "text": "one"}, {"type": "text", "text": "two"}])])
    b = li.chat([ChatMessage(role="user", blocks=[TextBlock(text="one"), TextBlock(text="two")])])
    assert a.response_metadata[METADATA_KEY] == b.additional_kwargs[PAYLOAD_KEY]
