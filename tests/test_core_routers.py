"""Every router on synthetic data: train -> save -> load gives identical win rates; batch == single; bad input."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from routing_core import CheckpointError, UnknownModelError, load_router
from routing_core.data.records import Battle
from routing_core.embedders import CallableEmbedder
from routing_core.training import TrainingData, pair_examples, train_router

TOPICS = [
    "proof theorem integral derivative equation",
    "hello thanks weather movie joke",
    "python function code bug compile",
]


def toy_vec(text: str, dim: int = 16) -> np.ndarray:
    """A deterministic embedding: topic words set fixed directions, the rest is hashed noise."""
    v = np.zeros(dim)
    for t, words in enumerate(TOPICS):
        v[t] += sum(w in text for w in words.split())
    h = hashlib.sha256(text.encode()).digest()
    v += 0.3 * (np.frombuffer(h[:dim], dtype=np.uint8) / 255.0 - 0.5)
    return v


TOY = CallableEmbedder(lambda texts: np.stack([toy_vec(t) for t in texts]), dim=16, name="toy")


def synthetic_data(n: int = 240, seed: int = 0) -> TrainingData:
    """Math prompts: the strong model wins; chit-chat: the weak model holds up; code: mostly ties."""
    rng = np.random.default_rng(seed)
    battles = []
    for i in range(n):
        topic = i % 3
        words = TOPICS[topic].split()
        prompt = f"request {i}: " + " ".join(rng.choice(words, size=4)) + " please" + "!" * (topic * 20)
        p_strong = [0.9, 0.2, 0.5][topic]
        r = rng.random()
        winner = "model_a" if r < p_strong * 0.8 else "model_b" if r > 1 - (1 - p_strong) * 0.8 else "tie"
        battles.append(Battle(prompt, "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1", winner, "toy"))
        other = rng.choice(["llama-2-70b-chat", "claude-2.1", "gpt-3.5-turbo-1106"])
        battles.append(
            Battle(
                prompt,
                str(other),
                "mixtral-8x7b-instruct-v0.1",
                str(rng.choice(["model_a", "model_b", "tie"])),
                "toy",
            )
        )  # type: ignore[arg-type]
        battles.append(
            Battle(prompt, "gpt-4-1106-preview", str(other), "model_a" if topic == 0 else "tie", "toy")
        )
    return TrainingData(battles, pair_examples(battles), {"toy": len(battles)})


QUERIES = [
    "request: proof theorem integral please",
    "request: hello thanks joke please",
    "request: python code bug please",
]


def _roundtrip(router, tmp_path: Path, **load_kwargs):
    folder = router.save(tmp_path / router.name, card="# card\n")
    loaded = load_router(str(folder), **load_kwargs)
    a, b = router.win_rate(QUERIES), loaded.win_rate(QUERIES)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    single = np.concatenate([loaded.win_rate([q]) for q in QUERIES])
    np.testing.assert_allclose(single, b, rtol=1e-5, atol=1e-6)
    assert ((b >= 0) & (b <= 1)).all()
    return loaded, folder


@pytest.mark.parametrize("name", ["logistic", "knn", "mf", "sw_ranking", "length"])
def test_embedding_routers_train_save_load(name: str, tmp_path: Path) -> None:
    data = synthetic_data()
    opts = {"embedder": TOY}
    if name == "mf":
        opts.update(max_epochs=60, progress=False, dim=16, lr=3e-3)
    router = train_router(
        name, data, TOY.embed, reference=[f"ref {i} proof hello" for i in range(50)], **opts
    )
    loaded, folder = _roundtrip(router, tmp_path, **({} if name == "length" else {"embedder": TOY}))
    w = loaded.win_rate(QUERIES)
    if name != "length":
        assert w[0] > w[1], f"{name}: math should beat chit-chat ({w})"
    assert 0.0 <= loaded.threshold_for_strong_fraction(0.5) <= 1.0
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["router"] == name and cfg["format"] == "routellm-plugin-checkpoint"
    assert not list(folder.glob("*.pkl")) and not list(folder.glob("*.bin"))


@pytest.mark.parametrize("name", ["mf", "sw_ranking"])
def test_pair_chosen_by_name_and_unknown_model(name: str, tmp_path: Path) -> None:
    data = synthetic_data()
    router = train_router(
        name, data, TOY.embed, embedder=TOY, **({"max_epochs": 5, "progress": False} if name == "mf" else {})
    )
    folder = router.save(tmp_path / name)
    other = load_router(str(folder), embedder=TOY, strong_model="claude-2.1", weak_model="llama-2-70b-chat")
    assert other.win_rate(QUERIES).shape == (3,)
    with pytest.raises(UnknownModelError, match="known models: .*gpt-4-1106-preview"):
        load_router(str(folder), embedder=TOY, strong_model="gpt-5")


def test_corrupted_and_truncated_checkpoints(tmp_path: Path) -> None:
    data = synthetic_data()
    router = train_router("logistic", data, TOY.embed, embedder=TOY)
    folder = router.save(tmp_path / "ck")
    weights = folder / "weights.safetensors"
    raw = weights.read_bytes()
    weights.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_router(str(folder), embedder=TOY)
    weights.unlink()
    with pytest.raises(CheckpointError, match="missing weights"):
        load_router(str(folder), embedder=TOY)
    (folder / "config.json").write_text('{"format": "routellm-plugin-checkpoint", "router": "logis')
    with pytest.raises(CheckpointError, match="corrupted config"):
        load_router(str(folder))


def test_no_usable_battles_is_a_clear_error() -> None:
    from routing_core.errors import DataError

    only_others = [Battle("a long enough prompt here", "x", "y", "tie")]
    with pytest.raises(DataError, match="no strong-tier vs weak-tier battles"):
        train_router(
            "logistic", TrainingData(only_others, pair_examples(only_others)), TOY.embed, embedder=TOY
        )


def test_official_mf_layout_has_one_reader(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    from routing_core.registry import load_checkpoint
    from routing_core.routers.official import OfficialMFRouter

    rng = np.random.default_rng(0)
    folder = tmp_path / "official"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"dim": 8, "num_models": 3, "text_dim": 16}))
    tensors = {"P.weight": (3, 8), "text_proj.0.weight": (8, 16), "classifier.0.weight": (1, 8)}
    save_file(
        {k: rng.normal(size=v).astype(np.float32) for k, v in tensors.items()},
        str(folder / "model.safetensors"),
    )
    models = ["claude-2.1", "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"]
    kw = {"embedder": TOY, "models": models}
    # the registry's checkpoint path and load_router both end in routers.official, never in a second reader
    assert isinstance(load_checkpoint(str(folder), **kw), OfficialMFRouter)


@pytest.mark.slow
def test_bert_router_tiny_backbone(tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel

    from routing_core.embedders import minilm_path

    backbone = tmp_path / "tiny-bert"
    backbone.mkdir()
    for f in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"):
        if (minilm_path() / f).exists():
            shutil.copy(minilm_path() / f, backbone / f)
    BertModel(
        BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    ).save_pretrained(backbone)
    data = synthetic_data(90)
    for mode in ("top", "frozen"):
        router = train_router(
            "bert", data, None, backbone=str(backbone), mode=mode, train_layers=1, epochs=1, max_length=32
        )
        loaded, folder = _roundtrip(router, tmp_path / mode)
        stored = json.loads((folder / "config.json").read_text())
        assert stored["mode"] == mode


def _tiny_causal_lm(folder: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = [
        "<unk>",
        "<pad>",
        "</s>",
        *list("12345"),
        *sorted({w for t in TOPICS for w in t.split()}),
        "request",
        "please",
        "score",
        "rate",
    ]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="</s>"
    )
    fast.save_pretrained(folder)
    LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(words),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=512,
        )
    ).save_pretrained(folder)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["lora", "full"])
def test_causal_llm_router_tiny_model(mode: str, tmp_path: Path) -> None:
    pytest.importorskip("peft")
    backbone = tmp_path / "tiny-llama"
    _tiny_causal_lm(backbone)
    data = synthetic_data(60)
    router = train_router(
        "causal_llm", data, None, backbone=str(backbone), mode=mode, epochs=1, max_length=96
    )
    _roundtrip(router, tmp_path / "out")


# --- routers shaped like estimators ---------------------------------------------------------------------------


def test_class_attributes_say_what_each_router_needs() -> None:
    from routing_core.registry import get_router_class

    expected = {
        "random": (False, False, None),
        "length": (False, False, "pairs"),
        "logistic": (True, True, "pairs"),
        "knn": (True, True, "pairs"),
        "mf": (True, True, "battles"),
        "sw_ranking": (True, True, "battles"),
        "bert": (True, False, "pairs"),
        "causal_llm": (True, False, "pairs"),
    }
    for name, attrs in expected.items():
        cls = get_router_class(name)
        assert (cls.needs_training, cls.uses_embeddings, cls.trains_on) == attrs, name


def test_every_hyperparameter_is_in_init_and_round_trips_through_get_params() -> None:
    from routing_core.routers.bert import BertRouter
    from routing_core.routers.matrix_factorization import MFRouter

    mf = MFRouter(dim=8, lr=1e-2, max_epochs=3, seed=7, embedder=TOY)
    params = mf.get_params()
    assert (
        params["lr"] == 1e-2
        and params["max_epochs"] == 3
        and params["seed"] == 7
        and params["embedder"] == "toy"
    )
    assert set(params) == set(MFRouter.param_names())
    assert repr(mf).startswith(
        "MFRouter(strong_model='gpt-4-1106-preview', weak_model='mixtral-8x7b-instruct-v0.1', dim=8"
    )
    clone = MFRouter(**{**params, "embedder": TOY})
    assert clone.get_params() == params
    assert set(BertRouter.param_names()) >= {"epochs", "lr", "seed", "mode", "backbone"}
    with pytest.raises(TypeError):
        mf.fit(np.zeros(1), ["a"], ["b"], np.zeros(1), np.zeros((1, 16)), np.zeros(1, bool), lr=1e-3)  # type: ignore[call-arg]


def test_checkpoint_config_is_driven_by_get_params(tmp_path: Path) -> None:
    router = train_router(
        "mf", synthetic_data(), TOY.embed, embedder=TOY, dim=8, max_epochs=2, lr=1e-2, progress=False
    )
    cfg = json.loads((router.save(tmp_path / "mf") / "config.json").read_text())
    for k, v in router.get_params().items():
        assert cfg[k] == v, k
    loaded = load_router(str(tmp_path / "mf"), embedder=TOY)
    assert {k: v for k, v in loaded.get_params().items() if k != "embedder"} == {
        k: v for k, v in router.get_params().items() if k != "embedder"
    }


def test_not_fitted_is_a_routing_error_not_an_assert() -> None:
    from routing_core.errors import NotFittedError, RoutingError
    from routing_core.routers.knn import KNNRouter
    from routing_core.routers.logistic import LogisticRouter
    from routing_core.routers.matrix_factorization import MFRouter
    from routing_core.routers.sw_ranking import SWRankingRouter

    for router in (
        LogisticRouter(embedder=TOY),
        KNNRouter(embedder=TOY),
        MFRouter(embedder=TOY),
        SWRankingRouter(embedder=TOY),
    ):
        with pytest.raises(NotFittedError, match="is not fitted") as info:
            router.win_rate(["hello"])
        assert isinstance(info.value, RoutingError)
        assert router.describe().get("weights") is None and not router.is_fitted


def test_describe_tells_two_trained_routers_of_one_kind_apart() -> None:
    data = synthetic_data()
    a = train_router("logistic", data, TOY.embed, embedder=TOY, l2=1.0)
    b = train_router("logistic", data, TOY.embed, embedder=TOY, l2=30.0)
    again = train_router("logistic", data, TOY.embed, embedder=TOY, l2=1.0)
    assert a.describe()["router"] == b.describe()["router"] == "logistic"
    assert a.describe()["weights"] != b.describe()["weights"]
    assert a.describe() == again.describe()  # same data, same parameters: same description (cache keys agree)
    before = a.describe()["weights"]
    a.fit_calibration(QUERIES, np.array([1.0, 0.0, 0.5]), TOY.embed(QUERIES))
    assert a.describe()["weights"] != before  # a new calibration is a different router


def test_mf_training_uses_local_random_generators_only() -> None:
    import random

    import torch

    data = synthetic_data()
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    states = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state().clone())
    a = train_router("mf", data, TOY.embed, embedder=TOY, dim=8, max_epochs=2, progress=False, seed=3)
    assert random.getstate() == states[0]
    np.testing.assert_array_equal(np.random.get_state()[1], states[1])
    assert torch.equal(torch.get_rng_state(), states[2])
    torch.manual_seed(999)  # a different global state does not change the result: the seed is the router's
    b = train_router("mf", data, TOY.embed, embedder=TOY, dim=8, max_epochs=2, progress=False, seed=3)
    np.testing.assert_array_equal(a.P, b.P)
    assert a.describe()["weights"] == b.describe()["weights"]
