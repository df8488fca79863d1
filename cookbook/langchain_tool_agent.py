"""A tool-calling loop on RoutedChatModel with two tools, strong and weak from different "providers".

The tools are bound once on the routed model; at each step the chosen model receives them in its own dialect
(OpenAI-style function tools for one side, Anthropic-style `input_schema` tools for the other). Every step of one
conversation is routed on the user's request, not on tool output, so a task stays on one model.

Runs offline by default on scripted fakes (langchain_routellm/testing.py). With `--openai` (OPENAI_API_KEY set and
`pip install langchain-openai`) the same loop runs on real models; nothing else changes.

    python cookbook/langchain_tool_agent.py [--openai] [--router random] [--strong-fraction 0.5]
"""

from __future__ import annotations

import argparse
import os

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import BaseTool, tool

from langchain_routellm import METADATA_KEY, RoutedChatModel


@tool
def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    forecasts = {"paris": "18°C and sunny", "oslo": "4°C with light rain", "lima": "22°C and cloudy"}
    return forecasts.get(city.strip().lower(), "21°C and clear")


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


TOOLS: dict[str, BaseTool] = {t.name: t for t in (get_weather, multiply)}


def make_models(use_openai: bool) -> tuple[BaseChatModel, BaseChatModel]:
    """(strong, weak). Swap in any tool-calling LangChain chat models; the loop below does not change."""
    if use_openai:
        from langchain_openai import ChatOpenAI  # pip install langchain-openai

        # Different providers work the same way, e.g. weak=ChatAnthropic(model="claude-3-5-haiku-latest").
        return ChatOpenAI(model="gpt-4o", temperature=0), ChatOpenAI(model="gpt-4o-mini", temperature=0)
    from langchain_routellm.testing import (  # scripted, offline, different tool dialects
        FakeAnthropicChat,
        FakeOpenAIChat,
    )

    return FakeOpenAIChat(model_name="fake-gpt-4o"), FakeAnthropicChat(model_name="fake-haiku")


def run_agent(model: RoutedChatModel, question: str, max_steps: int = 6) -> list[BaseMessage]:
    """Call the model, run the tools it asks for, feed the results back, until it answers."""
    llm = model.bind_tools(list(TOOLS.values()))
    messages: list[BaseMessage] = [
        SystemMessage("Use the tools when they help. Answer briefly."),
        HumanMessage(question),
    ]
    for step in range(1, max_steps + 1):
        ai = llm.invoke(messages)
        assert isinstance(ai, AIMessage)
        route = ai.response_metadata[METADATA_KEY]
        messages.append(ai)
        if not ai.tool_calls:
            print(f"  step {step}: [{route['side']}/{route['model_name']}] answer: {ai.text}")
            return messages
        for call in ai.tool_calls:
            result = TOOLS[call["name"]].invoke(call)  # a ToolMessage carrying call["id"]
            assert isinstance(result, ToolMessage)
            print(
                f"  step {step}: [{route['side']}/{route['model_name']}] {call['name']}({call['args']}) "
                f"-> {result.content}"
            )
            messages.append(result)
    raise RuntimeError(f"no final answer after {max_steps} steps")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--openai", action="store_true", help="use real OpenAI models (needs OPENAI_API_KEY)")
    parser.add_argument(
        "--router",
        default="random",
        help="router name or checkpoint folder (e.g. the bundled mf or bert; random keeps the demo instant)",
    )
    parser.add_argument("--strong-fraction", type=float, default=0.5, help="target share of strong calls")
    args = parser.parse_args(argv)
    if args.openai and not os.environ.get("OPENAI_API_KEY"):
        print("--openai needs OPENAI_API_KEY in the environment (and `pip install langchain-openai`)")
        return 2

    strong, weak = make_models(args.openai)
    model = RoutedChatModel(
        strong=strong, weak=weak, router=args.router, strong_fraction=args.strong_fraction
    )
    questions = [
        "What's the weather in 'Paris', and what is 6 multiplied by 7?",
        "How is the weather in 'Oslo' today?",
        "Please multiply 12 by 12.",
    ]
    for question in questions:
        print(f"Q: {question}")
        transcript = run_agent(model, question)
        sides = {m.response_metadata[METADATA_KEY]["side"] for m in transcript if isinstance(m, AIMessage)}
        print(f"  ({len(transcript)} messages; answered by the {'/'.join(sorted(sides))} model)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
