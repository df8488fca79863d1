"""Train the bundled routers (GPT-4-class vs Mixtral-class) from ../shared/data into routing_core/pretrained/.

Resumable: a router whose checkpoint folder already exists is skipped (delete it to retrain). Embeddings are
cached on disk under .cache/embeddings, so reruns do not embed again. Run one at a time on a 2-core machine:

    python scripts/train_bundled.py mf sw_ranking logistic knn length bert causal_llm difficulty
"""

from __future__ import annotations

import sys
import time
from functools import partial
from pathlib import Path

from routing_core.checkpoints import PRETRAINED_DIR
from routing_core.embedders import default_embedder
from routing_core.training import (
    DEFAULT_DATA,
    build_training_data,
    embed_cached,
    model_card,
    reference_prompts,
    train_router,
)

# Options per router; the data mix is chosen per router from ablations on development splits (docs/results.md).
OPTIONS: dict[str, dict] = {
    "mf": {"max_epochs": 40, "patience": 3},
    "sw_ranking": {},
    "logistic": {},
    "knn": {},
    "length": {},
    "bert": {"mode": "top", "train_layers": 2, "epochs": 2, "max_length": 128},
    "causal_llm": {"mode": "lora", "lora_r": 8, "epochs": 1, "max_length": 160, "max_examples": 1200},
    # pooled gains of every source's training split (alpaca_eval folds 1-4); the battles below only calibrate it
    "difficulty": {"l2": 1.0},
}
# Per router, the mix with the best mean APGR on the development splits in benchmarks/data_ablation.py (the
# sources' own 10% validation examples; no evaluation benchmark is looked at): a quarter of the alpaca_eval
# judge verdicts helps logistic and MF, all of them help kNN; the rest follow their closest kin.
WITH_ALPACA = (*DEFAULT_DATA, "shared:alpaca@0.25")
DATA: dict[str, tuple[str, ...]] = {
    "mf": WITH_ALPACA,
    "sw_ranking": WITH_ALPACA,
    "logistic": WITH_ALPACA,
    "knn": (*DEFAULT_DATA, "shared:alpaca"),
    "length": DEFAULT_DATA,
    "bert": WITH_ALPACA,
    "causal_llm": WITH_ALPACA,
    "difficulty": WITH_ALPACA,
}


def main(names: list[str]) -> int:
    embed = partial(embed_cached, default_embedder())
    ref, ref_name = reference_prompts()
    if not ref:
        print("../shared/data is needed to train the bundled routers", file=sys.stderr)
        return 2
    cache: dict[tuple[str, ...], object] = {}
    for name in names:
        out = PRETRAINED_DIR / name
        if (out / "config.json").exists():
            print(f"{name}: {out} exists, skipped")
            continue
        specs = DATA[name]
        if specs not in cache:
            cache[specs] = build_training_data(specs)
        data = cache[specs]
        t = time.time()
        router = train_router(
            name, data, embed, reference=ref, reference_name=ref_name, seed=0, **OPTIONS[name]
        )
        router.training_info["train_seconds"] = round(time.time() - t, 1)
        tmp = Path(str(out) + ".tmp")
        router.save(tmp, model_card(router, data))
        tmp.rename(out)
        print(f"{name}: trained in {time.time() - t:.0f}s -> {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or list(OPTIONS)))
