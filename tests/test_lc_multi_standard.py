"""langchain-tests standard suites for `RoutedChatModel(models={...})`, offline, over three scripted fakes of two
"providers" (OpenAI and Anthropic dialects) with a deterministic multi-model router whose predicted qualities are
a hash of the prompt, so that the suites' prompts land on all three models. Same setup as test_lc_standard.py
(the two-model form), sample media served from local bytes."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import httpx
import numpy as np
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests
from lc_fakes import FakeAnthropicChat, FakeOpenAIChat
from multi_fakes import KeywordQualityRouter

from langchain_routellm import RoutedChatModel

_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
NAMES = ("fake-gpt-big", "fake-claude-mid", "fake-gpt-small")


class HashQualityRouter(KeywordQualityRouter):
    """Predicted quality per model from a hash of the prompt: deterministic, and spread over the three models."""

    name = "hash_quality"

    def _quality(self, prompts: list[str], embeddings: Any) -> np.ndarray:
        rows = []
        for p in prompts:
            digest = hashlib.sha256(p.encode()).digest()
            rows.append([b / 255 for b in digest[: len(self.models)]])
        return np.asarray(rows, dtype=np.float64)

    def describe(self) -> dict[str, Any]:
        return {"router": self.name, "models": list(self.models)}


def test_the_router_spreads_prompts_over_the_three_models() -> None:
    m = RoutedChatModel(**_Routed().chat_model_params)
    sides = {m.route([HumanMessage(f"prompt {i}")]).side for i in range(30)}
    assert sides == {"big", "mid", "small"}


class _Routed:
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return RoutedChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "models": {
                "big": FakeOpenAIChat(model_name=NAMES[0]),
                "mid": FakeAnthropicChat(model_name=NAMES[1]),
                "small": FakeOpenAIChat(model_name=NAMES[2]),
            },
            "router": HashQualityRouter(models=NAMES, rules={}),
            "lam": 0.0,
        }

    supports_image_inputs = True


class TestMultiRoutedChatModelUnit(_Routed, ChatModelUnitTests):
    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return {}, {}, {}  # a router reads no environment variables (see test_lc_standard.py)


class TestMultiRoutedChatModelIntegration(_Routed, ChatModelIntegrationTests):
    has_tool_choice = True
    supports_json_mode = True
    # A per-call `model=` names one of the routed models (a key or a model name) and forces it.
    supports_model_override = True
    model_override_value = NAMES[1]
    supports_image_urls = True
    supports_pdf_inputs = True
    supports_audio_inputs = True
    supports_image_tool_message = True
    supports_pdf_tool_message = True
    supports_anthropic_inputs = True
    enable_vcr_tests = False

    @pytest.fixture(autouse=True)
    def _offline_media(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def fake_get(url: str, *args: Any, **kwargs: Any) -> httpx.Response:
            return httpx.Response(200, content=_PNG, request=httpx.Request("GET", url))

        monkeypatch.setattr(httpx, "get", fake_get)
        monkeypatch.setenv("LANGCHAIN_TESTS_USER_AGENT", "routellm-plugin-tests/0.1 (offline)")
