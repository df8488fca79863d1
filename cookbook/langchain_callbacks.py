"""Watch routing: log every decision and keep running totals and costs with RoutingCallbackHandler.

`RoutingCallbackHandler` listens to the `routellm_route` event that RoutedChatModel sends inside each call, logs
the decision with Python logging, and sums calls, tokens (from usage metadata, or tiktoken estimates) and costs
per side. `summary()` tells what routing saved against sending everything to the strong model. The same event is
visible in `astream_events`, shown at the end.

Runs offline by default on scripted fakes (langchain_routellm/testing.py), priced like gpt-4o / gpt-4o-mini. With `--openai`
(OPENAI_API_KEY set and `pip install langchain-openai`) the same code runs on real models, priced from
routing_core's default price table; nothing else changes.

    python cookbook/langchain_callbacks.py [--openai] [--router random] [--strong-fraction 0.3]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from langchain_core.language_models import BaseChatModel

from langchain_routellm import ROUTE_EVENT, RoutedChatModel, RoutingCallbackHandler
from routing_core.costs import Price


def make_models(use_openai: bool) -> tuple[BaseChatModel, BaseChatModel, dict[str, Price]]:
    """(strong, weak, extra prices). Swap in any LangChain chat models; the rest of the script stays the same."""
    if use_openai:
        from langchain_openai import ChatOpenAI  # pip install langchain-openai

        return (
            ChatOpenAI(model="gpt-4o"),
            ChatOpenAI(model="gpt-4o-mini"),
            {},
        )  # default price table knows these
    from langchain_routellm.testing import FakeAnthropicChat, FakeOpenAIChat  # scripted, offline

    prices = {"fake-gpt-4o": Price(2.5, 10.0), "fake-mini": Price(0.15, 0.6)}  # USD per 1M tokens (in, out)
    return FakeOpenAIChat(model_name="fake-gpt-4o"), FakeAnthropicChat(model_name="fake-mini"), prices


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--openai", action="store_true", help="use real OpenAI models (needs OPENAI_API_KEY)")
    parser.add_argument(
        "--router",
        default="random",
        help="router name or checkpoint folder (e.g. the bundled mf or bert; random keeps the demo instant)",
    )
    parser.add_argument("--strong-fraction", type=float, default=0.3, help="target share of strong calls")
    args = parser.parse_args(argv)
    if args.openai and not os.environ.get("OPENAI_API_KEY"):
        print("--openai needs OPENAI_API_KEY in the environment (and `pip install langchain-openai`)")
        return 2

    # Decisions are logged on the "langchain_routellm" logger at INFO (configurable per handler).
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stdout
    )
    logging.getLogger("langchain_routellm").setLevel(logging.INFO)

    strong, weak, prices = make_models(args.openai)
    handler = RoutingCallbackHandler(prices=prices)
    # Attach the handler to the model (every call is counted) or pass it per call in config={"callbacks": [...]}.
    model = RoutedChatModel(
        strong=strong,
        weak=weak,
        router=args.router,
        strong_fraction=args.strong_fraction,
        callbacks=[handler],
    )

    prompts = [f"Question {i}: explain topic number {i} in two sentences." for i in range(20)]
    model.batch(prompts, config={"max_concurrency": 4})
    print("".join(chunk.text for chunk in model.stream("Write a limerick about routers.")))
    model.invoke("Force this one onto the strong model.", model="strong")

    print("\n== routing summary ==")
    summary = handler.summary()
    print(summary)

    async def show_events() -> None:
        print("\n== the same decision in astream_events ==")
        async for event in model.astream_events("One more question.", version="v2"):
            if event["event"] == "on_custom_event" and event["name"] == ROUTE_EVENT:
                print(f"on_custom_event {event['name']}: {event['data']}")

    asyncio.run(show_events())
    return 0 if summary.total_calls == len(prompts) + 2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
