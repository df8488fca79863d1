"""RAG with routing: a VectorStoreIndex query engine whose LLM is a RoutedLLM.

Each question goes to the strong or the weak model; the router looks at the question (`query_str`), not at
the prompt the query engine stuffs with retrieved context, so a long context does not drag every call to
the expensive model.

Runs offline by default with two scripted local models and a small hashing embedder. To use hosted models
instead, install the integration and set the key; nothing else changes:

    pip install llama-index-llms-openai llama-index-embeddings-openai && export OPENAI_API_KEY=...
    pip install llama-index-llms-anthropic && export ANTHROPIC_API_KEY=...

Set ROUTELLM_COOKBOOK_OFFLINE=1 to keep the local models even when a key is set, and ROUTELLM_ROUTER to pick
another router (default: routing_core.DEFAULT_ROUTER).

    python cookbook/llamaindex_rag_query_engine.py
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import re

from llama_index.core import Document, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.llms import LLM

from llamaindex_routellm import RoutedLLM, RoutingEventHandler
from llamaindex_routellm.testing import ScriptedLLM
from routing_core import DEFAULT_ROUTER

DOCUMENTS = [
    "The Meridian Library opened in 1931. It holds 1.2 million books and a collection of star charts.",
    "The library's reading room is open from 8 am to 10 pm on weekdays and from 10 am to 6 pm on weekends.",
    "Borrowers may take out up to 12 books at a time, for three weeks, renewable twice online.",
    "The star charts were donated by the astronomer Ilse Marquardt, who mapped variable stars in the 1890s.",
    "A cafe on the ground floor serves coffee and soup; food is not allowed in the reading room.",
]

QUESTIONS = [
    "When is the reading room open on Saturdays?",
    "How many books can I borrow at once, and for how long?",
    "Who donated the star charts, and what did she study?",
    "Compare the weekday and weekend opening hours and explain which is longer.",
]


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _offline() -> bool:
    return os.environ.get("ROUTELLM_COOKBOOK_OFFLINE", "") not in ("", "0")


STOPWORDS = frozenset("the and for from who what when how which with are was can does did this that".split())


def content_words(text: str) -> set[str]:
    """Lower-cased words of 3+ letters, minus stop words, crudely stemmed to their first 5 letters."""
    return {w[:5] for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2 and w not in STOPWORDS}


class HashingEmbedding(BaseEmbedding):
    """A tiny offline bag-of-words embedder (hashed content words), good enough for a demo retriever."""

    dim: int = 256

    def _embed(self, text: str) -> list[float]:
        vec = [0.0] * self.dim
        for word in content_words(text):
            vec[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        return [v / norm for v in vec]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embed(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._embed(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embed(text)


def answer_from_context(name: str):
    """A scripted model that answers with the context sentence sharing most words with the query."""

    def respond(prompt: str) -> str:
        match = re.search(r"Query: (.*?)\n", prompt) or re.search(r"Query: (.*)", prompt)
        query = match.group(1) if match else prompt
        sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n", prompt) if len(s.split()) > 3]
        sentences = [s for s in sentences if query not in s and "context" not in s.lower()]
        best = max(sentences, key=lambda s: len(content_words(query) & content_words(s)), default="")
        return f"[{name}] {best}" if best else f"[{name}] I could not find that in the documents."

    return respond


def pick_models() -> tuple[LLM, LLM, BaseEmbedding]:
    """Hosted models when a key and the integration are there, else local scripted ones."""
    if not _offline() and os.environ.get("OPENAI_API_KEY") and _has("llama_index.llms.openai"):
        from llama_index.llms.openai import OpenAI

        embed: BaseEmbedding = HashingEmbedding()
        if _has("llama_index.embeddings.openai"):
            from llama_index.embeddings.openai import OpenAIEmbedding

            embed = OpenAIEmbedding(model="text-embedding-3-small")
        return OpenAI(model="gpt-4o"), OpenAI(model="gpt-4o-mini"), embed
    if not _offline() and os.environ.get("ANTHROPIC_API_KEY") and _has("llama_index.llms.anthropic"):
        from llama_index.llms.anthropic import Anthropic

        return (
            Anthropic(model="claude-3-5-sonnet-latest"),
            Anthropic(model="claude-3-5-haiku-latest"),
            HashingEmbedding(),
        )
    strong = ScriptedLLM(model_name="gpt-4o", responder=answer_from_context("strong"))
    weak = ScriptedLLM(model_name="gpt-4o-mini", responder=answer_from_context("weak"))
    return strong, weak, HashingEmbedding()


def main() -> None:
    strong, weak, embed_model = pick_models()
    llm = RoutedLLM(
        strong=strong,
        weak=weak,
        router=os.environ.get("ROUTELLM_ROUTER", DEFAULT_ROUTER),
        strong_fraction=0.5,  # aim for about half of the calls on the strong model
    )
    print(f"LLM: {llm!r}")

    totals = RoutingEventHandler()
    get_dispatcher().add_event_handler(totals)

    index = VectorStoreIndex.from_documents([Document(text=t) for t in DOCUMENTS], embed_model=embed_model)

    for mode in ("compact", "tree_summarize"):
        engine = index.as_query_engine(llm=llm, response_mode=mode, similarity_top_k=3)
        print(f"\n== response_mode={mode}")
        for question in QUESTIONS:
            seen = len(totals.decisions)
            response = engine.query(question)
            decision = totals.decisions[seen]
            print(f"Q: {question}")
            print(
                f"   routed to {decision.side} ({decision.model}) on {decision.source}, win rate {decision.win_rate:.3f}"
            )
            print(f"A: {str(response).strip()}")

    # streaming works the same way
    engine = index.as_query_engine(llm=llm, streaming=True, similarity_top_k=3)
    print("\n== streaming")
    streamed = engine.query(QUESTIONS[0])
    print("A: ", end="")
    for token in streamed.response_gen:
        print(token, end="", flush=True)
    print()

    print("\n== summary")
    print(totals.summary())


if __name__ == "__main__":
    main()
