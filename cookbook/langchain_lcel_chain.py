"""RoutedChatModel in an LCEL chain: prompt | routed model | StrOutputParser.

Runs offline by default on two scripted fake chat models (langchain_routellm/testing.py) that speak different provider
dialects. With `--openai` (and OPENAI_API_KEY set, plus `pip install langchain-openai`) the same chain runs on
real models; nothing else in the code changes.

    python cookbook/langchain_lcel_chain.py [--openai] [--router random] [--strong-fraction 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from langchain_routellm import ROUTE_EVENT, RoutedChatModel


def make_models(use_openai: bool) -> tuple[BaseChatModel, BaseChatModel]:
    """(strong, weak). Swap in any LangChain chat models here; the rest of the script stays the same."""
    if use_openai:
        from langchain_openai import ChatOpenAI  # pip install langchain-openai

        # Mixing providers works too, e.g. weak=ChatAnthropic(model="claude-3-5-haiku-latest").
        return ChatOpenAI(model="gpt-4o"), ChatOpenAI(model="gpt-4o-mini")
    from langchain_routellm.testing import FakeAnthropicChat, FakeOpenAIChat  # scripted, offline

    return FakeOpenAIChat(model_name="fake-gpt-4o"), FakeAnthropicChat(model_name="fake-haiku")


class PrintRoute(BaseCallbackHandler):
    """Prints the routing decision of each call (the `routellm_route` event)."""

    def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        if name == ROUTE_EVENT:
            win = "n/a" if data["win_rate"] is None else f"{data['win_rate']:.3f}"
            print(
                f"  [route] {data['side']:<6} {data['model_name']:<14} win_rate={win} threshold={data['threshold']:.3f}"
            )


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
    routed = RoutedChatModel(
        strong=strong, weak=weak, router=args.router, strong_fraction=args.strong_fraction
    )
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You are a concise assistant. Answer in one sentence."), ("human", "{question}")]
    )
    chain = prompt | routed | StrOutputParser()
    config = {"callbacks": [PrintRoute()]}

    # With the default "random" router (the RouteLLM paper's baseline: a seeded hash of the prompt) these four
    # questions split 2/2; a learned router (--router mf, once bundled) decides on the content instead.
    questions = [
        "What is the capital of France?",
        "Compare quicksort and mergesort in the worst case.",
        "Write a haiku about autumn.",
        "Summarize the causes of World War I.",
    ]
    print(
        f"router={routed.router.name} threshold={routed.threshold:.3f} (strong_fraction={args.strong_fraction})\n"
    )
    print("invoke:")
    for q in questions[:2]:
        print(f"Q: {q}")
        print(f"A: {chain.invoke({'question': q}, config=config)}\n")

    print("batch (results keep the input order):")
    for q, a in zip(questions, chain.batch([{"question": q} for q in questions], config=config), strict=True):
        print(f"  {q!r} -> {a!r}")

    print("\nstream:")
    for piece in chain.stream({"question": questions[3]}, config=config):
        print(piece, end="|", flush=True)
    print("\n")

    async def run_async() -> list[str]:
        return await asyncio.gather(*(chain.ainvoke({"question": q}) for q in questions))

    print("async (concurrent ainvoke):")
    for a in asyncio.run(run_async()):
        print(f"  {a}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
