"""RouteLLM's causal-LLM layout (routellm/causal_llm_gpt4_augmented) on a tiny random Llama, on CPU.

The reference is RouteLLM 0.2.0's CausalLLMRouter/CausalLLMClassifier path, verbatim (to_openai_api_messages,
PromptFormat.generate_prompt for Llama-3, get_tokenizer, generate, compute_routing_prob, postprocess), with
"cuda" replaced by "cpu" and bfloat16 by float32 so it runs here.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from routing_core.routers.official import (  # noqa: E402
    OfficialCausalLLMRouter,
    OfficialRouterError,
    detect_layout,
    load_official,
)

SPECIAL = ["[[1]]", "[[2]]", "[[3]]", "[[4]]", "[[5]]"]
LLAMA_SPECIAL = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
]
WORDS = "system user assistant rate the question from 1 to 5 how hard is it hello write a poem prove math code why".split()
SYSTEM = "You rate how well a small model would answer.\n"
CLASSIFIER = "Rate this question from 1 to 5:\n{question}\n"
PROMPTS = [
    "hello",
    "write a poem",
    "prove math is hard",
    "why",
    "code code code why hello",
    "how hard is the question",
    "a",
]


def build_tiny_causal(folder: Path, seed: int, boost: float) -> Path:
    """A random LlamaForCausalLM whose vocabulary already holds the five score tokens, + its base tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {t: i for i, t in enumerate(["<unk>", *LLAMA_SPECIAL, *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(LLAMA_SPECIAL)
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", 1)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>", unk_token="<unk>"
    )
    fast.save_pretrained(str(folder))
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(vocab) + len(SPECIAL),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # make the score tokens likely enough that both routing paths occur
        model.lm_head.weight[len(vocab) :] *= boost
    model.save_pretrained(str(folder), safe_serialization=True)
    (folder / "system_ft_v5.txt").write_text(SYSTEM)
    (folder / "classifier_ft_v5.txt").write_text(CLASSIFIER)
    return folder


# --- RouteLLM 0.2.0, verbatim (cuda -> cpu, bfloat16 -> float32) --------------------------------------------

FORMAT = {
    "system": "<|start_header_id|>system<|end_header_id|>\n\n{instruction}<|eot_id|>",
    "assistant": "<|start_header_id|>assistant<|end_header_id|>\n\n{instruction}<|eot_id|>",
    "trailing_assistant": "",
    "user": "<|start_header_id|>user<|end_header_id|>\n\n{instruction}<|eot_id|>",
    "system_in_user": False,
    "default_system_message": "",
}


def generate_prompt(messages: list[dict[str, Any]]) -> str:
    """PromptFormat(**FORMAT, is_generation=True).generate_prompt, its non-validator body verbatim."""
    self = type("PF", (), {**FORMAT, "is_generation": True})
    messages = copy.deepcopy(messages)
    system_message = None
    if messages[0]["role"] == "system":
        system_message = messages.pop(0)
        if system_message["content"] is None:
            system_message["content"] = ""
    if not system_message and self.default_system_message:
        system_message = {"role": "system", "content": self.default_system_message}
    if system_message is not None and system_message["content"] and not self.system_in_user:
        messages.insert(0, system_message)
    prompt = []
    for message in messages:
        message_content = message["content"]
        message_content = message_content.strip()
        if message["role"] == "system":
            prompt.append({"role": "system", "content": self.system.format(instruction=message_content)})
        elif message["role"] == "user":
            prompt.append({"role": "user", "content": self.user.format(instruction=message_content)})
        elif message["role"] == "assistant":
            prompt.append(
                {"role": "assistant", "content": self.assistant.format(instruction=message_content)}
            )
    if self.trailing_assistant:
        prompt.append({"role": "assistant", "content": self.trailing_assistant})
    return "".join(turn["content"] for turn in prompt)


def to_openai_api_messages(
    system_message: str, classifier_message: str, messages: list[str]
) -> list[dict[str, str]]:
    ret = [{"role": "system", "content": system_message}]
    for i, turn in enumerate(messages):
        if i % 2 == 0:
            ret.append({"role": "user", "content": classifier_message.format(question=turn)})
        else:
            ret.append({"role": "assistant", "content": turn})
    return ret


class Reference:
    """CausalLLMRouter(checkpoint_path) + CausalLLMClassifier, on CPU."""

    def __init__(self, folder: Path) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(
            str(folder), torch_dtype=torch.float32, use_cache=False, attention_dropout=0.0
        )
        self.model = model.to("cpu").eval()
        tokenizer = AutoTokenizer.from_pretrained(
            str(folder), legacy=True, truncation_side="left", padding_side="left"
        )
        tokenizer.pad_token = tokenizer.eos_token
        tokenizer.add_tokens(SPECIAL, special_tokens=True)
        self.tokenizer = tokenizer
        self.orig_vocab_size = len(self.tokenizer) - 5
        self.max_new_tokens = 6
        self.score_threshold = 4
        self.system_message = (folder / "system_ft_v5.txt").read_text()
        self.classifier_message = (folder / "classifier_ft_v5.txt").read_text()

    def __call__(self, row: dict[str, Any]) -> dict[str, Any] | None:
        text = generate_prompt(row["messages"])
        row = {"input_ids": np.array(self.tokenizer.encode(text))}
        input_ids = torch.as_tensor(row["input_ids"]).to("cpu").reshape(1, -1)
        with torch.no_grad():
            output_new = self.model.generate(
                input_ids,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.eos_token_id,
                output_scores=True,
                return_dict_in_generate=True,
            )
        row["output_ids"] = output_new.sequences.squeeze()[input_ids.shape[1] :].cpu()
        label_token_idx = next(
            (i for i, x in enumerate(row["output_ids"]) if x >= self.orig_vocab_size), None
        )
        if label_token_idx is None:
            return None
        score_logits = np.array(output_new.scores[label_token_idx][0].to("cpu")[self.orig_vocab_size :])
        row["score_logits"] = score_logits
        binary_prob, softmax_scores = self.compute_routing_prob(score_logits)
        row["softmax_scores"] = softmax_scores
        row["binary_prob"] = binary_prob
        return self.postprocess(row)

    def compute_routing_prob(self, score_logits: np.ndarray) -> tuple[Any, Any]:
        exp_scores = np.exp(score_logits - np.max(score_logits))
        softmax_scores = exp_scores / np.sum(exp_scores)
        binary_prob = np.sum(softmax_scores[self.score_threshold - 1 :])
        return binary_prob, softmax_scores

    def postprocess(self, row: dict[str, Any]) -> dict[str, Any]:
        output_str = self.tokenizer.decode(row["output_ids"])
        row["score_pred"] = self.parse_score(output_str)
        logits_pred = np.argmax(row["score_logits"]) + 1
        assert logits_pred == row["score_pred"]
        return row

    def parse_score(self, text: str) -> int:
        match = re.search(r"\[\[([\d\.]+)\]\]", text)
        if match:
            return int(float(match.group(1)))
        raise Exception(f"Bad score format {text}.")

    def calculate_strong_win_rate(self, prompt: str) -> float:
        output = self(
            {"messages": to_openai_api_messages(self.system_message, self.classifier_message, [prompt])}
        )
        if output is None:
            return 1
        return 1 - output["binary_prob"]


@pytest.fixture(scope="module")
def causal_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_causal(tmp_path_factory.mktemp("causal_llm_gpt4_augmented"), seed=0, boost=3.0)


def test_layout_is_detected(causal_folder: Path) -> None:
    assert detect_layout(causal_folder) == "causal_llm"


def test_win_rates_equal_the_original_on_cpu(causal_folder: Path) -> None:
    router = load_official(causal_folder, device="cpu", dtype="float32")
    assert isinstance(router, OfficialCausalLLMRouter)
    d = router.describe()
    assert d["router"] == "routellm_causal_llm" and d["tokenizer"] is None and d["device"] == "cpu"
    ref = Reference(causal_folder)
    expected = np.array([ref.calculate_strong_win_rate(p) for p in PROMPTS], dtype=np.float64)
    np.testing.assert_allclose(router.win_rate(PROMPTS), expected, atol=1e-5, rtol=0)
    scored = expected[expected < 1.0]
    assert len(scored) == len(PROMPTS) and np.ptp(scored) > 1e-3  # the score-token path, differing results


def test_no_score_token_routes_to_strong_like_the_original(tmp_path: Path) -> None:
    folder = build_tiny_causal(tmp_path / "silent", seed=1, boost=0.0)  # score tokens never win the argmax
    router = load_official(folder, device="cpu", dtype="float32")
    expected = [Reference(folder).calculate_strong_win_rate(p) for p in PROMPTS[:3]]
    assert expected == [1, 1, 1]
    np.testing.assert_array_equal(router.win_rate(PROMPTS[:3]), expected)


def test_no_gpu_is_one_clear_line(causal_folder: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(OfficialRouterError) as e:
        load_official(causal_folder)
    msg = str(e.value)
    assert "CUDA GPU" in msg and "device='cpu'" in msg and "\n" not in msg
    with pytest.raises(OfficialRouterError, match="CUDA GPU"):  # the hub id fails before any download
        load_official("routellm/causal_llm_gpt4_augmented")


def test_missing_prompt_files_are_named(causal_folder: Path, tmp_path: Path) -> None:
    for f in causal_folder.iterdir():
        if f.name != "classifier_ft_v5.txt":
            (tmp_path / f.name).write_bytes(f.read_bytes())
    with pytest.raises(OfficialRouterError, match="classifier_ft_v5.txt"):
        OfficialCausalLLMRouter(tmp_path, device="cpu", dtype="float32")


def test_tokenizer_from_elsewhere_when_the_folder_has_none(causal_folder: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    for f in causal_folder.iterdir():
        if not f.name.startswith(("tokenizer", "special_tokens")):
            (bare / f.name).write_bytes(f.read_bytes())
    with pytest.raises(OfficialRouterError, match="tokenizer="):
        OfficialCausalLLMRouter(bare, device="cpu", dtype="float32")
    router = OfficialCausalLLMRouter(bare, device="cpu", dtype="float32", tokenizer=causal_folder)
    same = OfficialCausalLLMRouter(causal_folder, device="cpu", dtype="float32")
    np.testing.assert_allclose(router.win_rate(PROMPTS[:3]), same.win_rate(PROMPTS[:3]), atol=1e-12)
