"""RouteLLM's BERT router layout (routellm/bert_gpt4_augmented) on a tiny random XLM-RoBERTa classifier.

The reference below is RouteLLM 0.2.0's BERTRouter.calculate_strong_win_rate, verbatim, one prompt at a time;
our router batches with padding and must agree to 1e-5.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from routing_core.routers.official import (  # noqa: E402
    OfficialBertRouter,
    OfficialRouterError,
    detect_layout,
    load_official,
)

WORDS = (
    "the a an of to and in is what how why write code python explain proof prove theorem story poem short "
    "long list give me please hello world capital france math integral derivative sum number prime sort "
    "array function class data model train test quick brown fox jumps over lazy dog"
).split()

PROMPTS = [
    "hello world",
    "write a short poem about the quick brown fox",
    "prove the theorem that the sum of two prime number is even please explain the proof",
    "what is the capital of france",
    "explain how to sort an array in python with a function and a class and give me code " * 4,  # truncated
    "why",
    "unknownword another unknown",
]


def build_tokenizer(folder: Path, max_len: int = 24) -> None:
    """A tiny word-level tokenizer with XLM-R's special ids (<s>=0, <pad>=1, </s>=2, <unk>=3)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, **{w: i + 4 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=max_len,
    )
    fast.save_pretrained(str(folder))


def build_tiny_bert(folder: Path, seed: int = 0) -> Path:
    """A randomly initialised 3-label XLMRobertaForSequenceClassification saved as safetensors + a tokenizer."""
    from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification

    folder.mkdir(parents=True, exist_ok=True)
    build_tokenizer(folder)
    torch.manual_seed(seed)
    cfg = XLMRobertaConfig(
        vocab_size=len(WORDS) + 4,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=40,
        num_labels=3,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        initializer_range=0.5,
    )
    model = XLMRobertaForSequenceClassification(cfg).eval()
    with torch.no_grad():  # larger head weights: win rates spread over (0, 1) instead of all near 1/3
        model.classifier.out_proj.weight.mul_(5.0)
    model.save_pretrained(str(folder), safe_serialization=True)
    return folder


def reference_win_rate(folder: Path, prompt: str) -> float:
    """RouteLLM 0.2.0 BERTRouter, verbatim (constructor + calculate_strong_win_rate)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(str(folder), num_labels=3)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    inputs = tokenizer(prompt, return_tensors="pt", padding=True, truncation=True)
    with torch.no_grad():
        outputs = model(**inputs)
        logits = outputs.logits.numpy()[0]

    exp_scores = np.exp(logits - np.max(logits))
    softmax_scores = exp_scores / np.sum(exp_scores)

    # Compute prob of label 1 and 2 (tie, tier 2 wins)
    binary_prob = np.sum(softmax_scores[-2:])
    return 1 - binary_prob


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("bert_gpt4_augmented"))


def test_layout_is_detected_from_the_files(bert_folder: Path) -> None:
    assert detect_layout(bert_folder) == "bert"


def test_batched_win_rates_equal_the_original_one_prompt_at_a_time(bert_folder: Path) -> None:
    router = load_official(bert_folder, batch_size=4)
    assert isinstance(router, OfficialBertRouter)
    ours = router.win_rate(PROMPTS)
    ref = np.array([reference_win_rate(bert_folder, p) for p in PROMPTS])
    np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=0)
    assert ref.std() > 0.01  # the comparison is not between constants


def test_long_prompts_are_truncated_like_the_original(bert_folder: Path) -> None:
    router = load_official(bert_folder)
    long = PROMPTS[4]
    n_tokens = len(router.tokenizer(long)["input_ids"])
    assert n_tokens > router.tokenizer.model_max_length  # the case really exercises truncation
    # a different tail past the limit cannot change the win rate: the original only sees the first tokens
    tail = long + " hello world " * 10
    np.testing.assert_allclose(
        router.win_rate([long, tail]), [reference_win_rate(bert_folder, long)] * 2, atol=1e-5
    )


def test_folder_with_only_pickled_weights_is_refused(bert_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "pickled"
    folder.mkdir()
    for f in bert_folder.iterdir():
        if f.suffix != ".safetensors":
            (folder / f.name).write_bytes(f.read_bytes())
    (folder / "pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(OfficialRouterError) as e:
        load_official(folder)
    msg = str(e.value)
    assert "pytorch_model.bin" in msg and "safetensors" in msg and "\n" not in msg


def test_unknown_config_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["GPT2Model"]}))
    with pytest.raises(OfficialRouterError, match="not an official RouteLLM layout"):
        load_official(tmp_path)
