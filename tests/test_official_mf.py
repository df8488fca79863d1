"""RouteLLM's MF layout (routellm/mf_gpt4_augmented) on a tiny random MFModel saved by PyTorchModelHubMixin.

The reference is RouteLLM 0.2.0's MFModel, verbatim, with its OPENAI_CLIENT replaced by a local fake client
that returns deterministic (unnormalised) vectors, and MatrixFactorizationRouter's MODEL_IDS lookup.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
hub = pytest.importorskip("huggingface_hub")

from routing_core.errors import UnknownModelError  # noqa: E402
from routing_core.routers.official import (  # noqa: E402
    MODEL_IDS,
    OfficialMFRouter,
    OfficialRouterError,
    detect_layout,
    load_official,
)

TEXT_DIM, DIM = 12, 8
PROMPTS = [
    "hello there, how are you?",
    "prove that sqrt(2) is irrational",
    "write a haiku about rain",
    "2+2?",
]


def vector(text: str, dim: int = TEXT_DIM) -> list[float]:
    """A deterministic pseudo-embedding (not unit norm: the original uses vectors as OpenAI returns them)."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return (np.random.default_rng(seed).normal(size=dim) * 3.0).tolist()


class FakeOpenAI:
    """The slice of the OpenAI client the original and our router call: embeddings.create(input, model)."""

    def __init__(self, dim: int = TEXT_DIM) -> None:
        self.calls: list[tuple[str, int]] = []
        self.embeddings = SimpleNamespace(create=self._create)
        self.dim = dim

    def _create(self, input: list[str], model: str) -> Any:  # noqa: A002 - the OpenAI keyword
        self.calls.append((model, len(input)))
        rows = [SimpleNamespace(index=i, embedding=vector(t, self.dim)) for i, t in enumerate(input)]
        return SimpleNamespace(data=list(reversed(rows)))  # out of order on purpose: .index must be honoured


OPENAI_CLIENT = FakeOpenAI()


class MFModel(torch.nn.Module, hub.PyTorchModelHubMixin):
    """RouteLLM 0.2.0 routers/matrix_factorization/model.py MFModel, verbatim."""

    def __init__(
        self,
        dim,
        num_models,
        text_dim,
        num_classes,
        use_proj,
    ):
        super().__init__()
        self._name = "TextMF"
        self.use_proj = use_proj
        self.P = torch.nn.Embedding(num_models, dim)

        self.embedding_model = "text-embedding-3-small"

        if self.use_proj:
            self.text_proj = torch.nn.Sequential(torch.nn.Linear(text_dim, dim, bias=False))
        else:
            assert text_dim == dim, f"text_dim {text_dim} must be equal to dim {dim} if not using projection"

        self.classifier = torch.nn.Sequential(torch.nn.Linear(dim, num_classes, bias=False))

    def get_device(self):
        return self.P.weight.device

    def forward(self, model_id, prompt):
        model_id = torch.tensor(model_id, dtype=torch.long).to(self.get_device())

        model_embed = self.P(model_id)
        model_embed = torch.nn.functional.normalize(model_embed, p=2, dim=1)

        prompt_embed = (
            OPENAI_CLIENT.embeddings.create(input=[prompt], model=self.embedding_model).data[0].embedding
        )
        prompt_embed = torch.tensor(prompt_embed, device=self.get_device())
        prompt_embed = self.text_proj(prompt_embed)

        return self.classifier(model_embed * prompt_embed).squeeze()

    @torch.no_grad()
    def pred_win_rate(self, model_a, model_b, prompt):
        logits = self.forward([model_a, model_b], prompt)
        winrate = torch.sigmoid(logits[0] - logits[1]).item()
        return winrate


def build_tiny_mf(folder: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    model = MFModel(dim=DIM, num_models=len(MODEL_IDS), text_dim=TEXT_DIM, num_classes=1, use_proj=True)
    model.save_pretrained(str(folder))  # the mixin's layout: config.json + model.safetensors
    return folder


def reference(folder: Path, strong: str, weak: str, prompt: str) -> float:
    """MatrixFactorizationRouter.__init__ + calculate_strong_win_rate, verbatim (CPU)."""
    model = MFModel.from_pretrained(
        str(folder), dim=DIM, num_models=64, text_dim=TEXT_DIM, num_classes=1, use_proj=True
    )
    model = model.eval()
    return model.pred_win_rate(MODEL_IDS[strong], MODEL_IDS[weak], prompt)


@pytest.fixture(scope="module")
def mf_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_mf(tmp_path_factory.mktemp("mf_gpt4_augmented"))


class LCEmbeddings:
    """A LangChain Embeddings (the real base class when installed)."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return vector(text)


def lc_embeddings() -> Any:
    try:
        from langchain_core.embeddings import Embeddings
    except ImportError:
        return LCEmbeddings()

    class Real(LCEmbeddings, Embeddings):
        pass

    return Real()


def test_layout_and_model_table(mf_folder: Path) -> None:
    assert detect_layout(mf_folder) == "mf"
    assert len(MODEL_IDS) == 64 and sorted(MODEL_IDS.values()) == list(range(64))
    assert MODEL_IDS["gpt-4-1106-preview"] == 24 and MODEL_IDS["mixtral-8x7b-instruct-v0.1"] == 36


@pytest.mark.parametrize("kind", ["openai", "langchain", "callable"])
def test_win_rates_equal_the_original(mf_folder: Path, kind: str) -> None:
    emb = {
        "openai": FakeOpenAI(),
        "langchain": lc_embeddings(),
        "callable": lambda ts: [vector(t) for t in ts],
    }[kind]
    router = load_official(mf_folder, embedder=emb)
    assert isinstance(router, OfficialMFRouter)
    ref = [reference(mf_folder, "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1", p) for p in PROMPTS]
    np.testing.assert_allclose(router.win_rate(PROMPTS), ref, atol=1e-5, rtol=0)
    assert np.std(ref) > 0.01
    if kind == "openai":
        assert emb.calls == [
            ("text-embedding-3-small", len(PROMPTS))
        ]  # one batched request, the paper's model


def test_other_pairs_and_spellings(mf_folder: Path) -> None:
    router = OfficialMFRouter(
        mf_folder, embedder=FakeOpenAI(), strong_model="claude-2.1", weak_model="Llama-2-13B-Chat"
    )
    ref = [reference(mf_folder, "claude-2.1", "llama-2-13b-chat", p) for p in PROMPTS]
    np.testing.assert_allclose(router.win_rate(PROMPTS), ref, atol=1e-5)
    aliased = OfficialMFRouter(
        mf_folder,
        embedder=FakeOpenAI(),
        strong_model="gpt4_1106_preview",
        weak_model="mistralai/Mixtral-8x7B-Instruct-v0.1",
    )
    default = OfficialMFRouter(mf_folder, embedder=FakeOpenAI())
    np.testing.assert_allclose(aliased.win_rate(PROMPTS), default.win_rate(PROMPTS), atol=0)


def test_unknown_model_lists_the_known_ones(mf_folder: Path) -> None:
    with pytest.raises(UnknownModelError) as e:
        OfficialMFRouter(mf_folder, embedder=FakeOpenAI(), strong_model="gpt-7")
    assert "gpt-7" in str(e.value) and "zephyr-7b-beta" in str(e.value) and "RWKV-4-Raven-14B" in str(e.value)


def test_embedder_width_is_checked(mf_folder: Path) -> None:
    router = OfficialMFRouter(mf_folder, embedder=lambda ts: [vector(t, 384) for t in ts])
    with pytest.raises(OfficialRouterError) as e:
        router.win_rate(["hello"])
    assert "384-d" in str(e.value) and f"{TEXT_DIM}-d" in str(e.value) and "\n" not in str(e.value)


def test_missing_embedder_says_what_to_pass(mf_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(OfficialRouterError, match="embedder="):
        OfficialMFRouter(mf_folder)


def test_folder_without_config_is_read_from_the_tensors(mf_folder: Path, tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes((mf_folder / "model.safetensors").read_bytes())
    assert detect_layout(tmp_path) == "mf"
    bare = load_official(tmp_path, embedder=FakeOpenAI())
    np.testing.assert_allclose(
        bare.win_rate(PROMPTS), load_official(mf_folder, embedder=FakeOpenAI()).win_rate(PROMPTS), atol=0
    )
