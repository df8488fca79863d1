"""A FunctionAgent with two tools whose LLM is a RoutedLLM.

The router picks a model per agent run from the user's question; every step of the run (tool call, then the
final answer over the tool results) goes to that same model, so tool-call formats never mix providers.

Runs offline by default with two scripted local function-calling models. To use hosted models instead,
install the integration and set the key; nothing else changes:

    pip install llama-index-llms-openai && export OPENAI_API_KEY=...
    pip install llama-index-llms-anthropic && export ANTHROPIC_API_KEY=...

Set ROUTELLM_COOKBOOK_OFFLINE=1 to keep the local models even when a key is set, and ROUTELLM_ROUTER to pick
another router (default: routing_core.DEFAULT_ROUTER).

    python cookbook/llamaindex_agent.py
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
from typing import Any

from llama_index.core.agent.workflow import AgentStream, FunctionAgent, ToolCall, ToolCallResult
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.llms import LLM
from llama_index.core.tools import FunctionTool

from llamaindex_routellm import RoutedLLM, RoutingEventHandler
from llamaindex_routellm.testing import ScriptedLLM
from routing_core import DEFAULT_ROUTER

CITIES = {
    "paris": {"population": 2_102_650, "area_km2": 105.4},
    "berlin": {"population": 3_878_100, "area_km2": 891.1},
    "lisbon": {"population": 567_131, "area_km2": 100.1},
}


def city_population(city: str) -> int:
    """Population of a city (Paris, Berlin or Lisbon)."""
    return CITIES[city.lower()]["population"]  # type: ignore[return-value]


def city_area(city: str) -> float:
    """Area of a city in square kilometres (Paris, Berlin or Lisbon)."""
    return CITIES[city.lower()]["area_km2"]


TOOLS = [FunctionTool.from_defaults(city_population), FunctionTool.from_defaults(city_area)]

QUESTIONS = [
    "How many people live in Paris, and how large is it?",
    "What is the population density of Berlin? Show your reasoning.",
    "Tell me the population and area of Lisbon.",
    "Say hello in Portuguese.",
]


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _offline() -> bool:
    return os.environ.get("ROUTELLM_COOKBOOK_OFFLINE", "") not in ("", "0")


def plan_tool_calls(question: str, tools: Any) -> list[tuple[str, dict[str, Any]]]:
    """The scripted models' "reasoning": look up both facts for every known city in the question."""
    calls: list[tuple[str, dict[str, Any]]] = []
    for city in CITIES:
        if re.search(rf"\b{city}\b", question.lower()):
            calls += [("city_population", {"city": city.title()}), ("city_area", {"city": city.title()})]
    return calls


def scripted_answer(name: str):
    def respond(text: str) -> str:
        if "[tool results]" not in text:
            return f"[{name}] Olá! (no tools needed)"
        question, results = text.split("\n[tool results] ", 1)
        values = [float(v) for v in results.split("; ")]
        facts = [
            f"population {int(p):,}, area {a} km² ({p / a:,.0f} people/km²)"
            for p, a in zip(values[::2], values[1::2], strict=True)
        ]
        return f"[{name}] " + "; ".join(facts)

    return respond


def pick_models() -> tuple[LLM, LLM]:
    """Hosted function-calling models when a key and the integration are there, else local scripted ones."""
    if not _offline() and os.environ.get("OPENAI_API_KEY") and _has("llama_index.llms.openai"):
        from llama_index.llms.openai import OpenAI

        return OpenAI(model="gpt-4o"), OpenAI(model="gpt-4o-mini")
    if not _offline() and os.environ.get("ANTHROPIC_API_KEY") and _has("llama_index.llms.anthropic"):
        from llama_index.llms.anthropic import Anthropic

        return Anthropic(model="claude-3-5-sonnet-latest"), Anthropic(model="claude-3-5-haiku-latest")
    strong = ScriptedLLM(
        model_name="gpt-4o", tool_caller=plan_tool_calls, responder=scripted_answer("strong")
    )
    weak = ScriptedLLM(
        model_name="gpt-4o-mini", tool_caller=plan_tool_calls, responder=scripted_answer("weak")
    )
    return strong, weak


async def main() -> None:
    strong, weak = pick_models()
    llm = RoutedLLM(
        strong=strong,
        weak=weak,
        router=os.environ.get("ROUTELLM_ROUTER", DEFAULT_ROUTER),
        strong_fraction=0.5,
    )
    totals = RoutingEventHandler()
    get_dispatcher().add_event_handler(totals)

    agent = FunctionAgent(
        tools=TOOLS,
        llm=llm,
        system_prompt="You answer questions about cities. Use the tools for facts.",
    )
    for question in QUESTIONS:
        seen = len(totals.decisions)
        print(f"\nQ: {question}")
        handler = agent.run(user_msg=question)
        async for event in handler.stream_events():
            if isinstance(event, ToolCall) and not isinstance(event, ToolCallResult):
                print(f"   tool call  {event.tool_name}({event.tool_kwargs})")
            elif isinstance(event, ToolCallResult):
                print(f"   tool result {event.tool_name} -> {event.tool_output.content}")
            elif isinstance(event, AgentStream):
                pass  # token deltas; print(event.delta, end="") to stream the answer
        result = await handler
        steps = totals.decisions[seen:]
        sides = sorted({d.side for d in steps})
        print(
            f"   {len(steps)} LLM call(s), all routed to {'/'.join(sides)} ({steps[0].model}), "
            f"win rate {steps[0].win_rate:.3f}"
        )
        print(f"A: {result.response.content}")

    print("\n== summary")
    print(totals.summary())


if __name__ == "__main__":
    asyncio.run(main())
