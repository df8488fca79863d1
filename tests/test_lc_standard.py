"""langchain-tests standard suites for RoutedChatModel, offline, over scripted fakes of two different "providers".

The integration suite runs against `FakeOpenAIChat` (strong) and `FakeAnthropicChat` (weak), which speak different
tool / JSON dialects, with the deterministic "random" router at threshold 0.5 so that the suite's prompts land on
both sides. The suite downloads sample media (image, PDF, audio) with `httpx.get`; here that call is served from
local bytes, so the multimodal tests run too (the fakes accept any content blocks, and the router reads text only).
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests
from lc_fakes import FakeAnthropicChat, FakeOpenAIChat

from langchain_routellm import RoutedChatModel

# A 1x1 PNG; the suite only base64-encodes what it "downloads" and passes it along.
_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def _params() -> dict[str, Any]:
    return {
        "strong": FakeOpenAIChat(model_name="fake-gpt-strong"),
        "weak": FakeAnthropicChat(model_name="fake-claude-weak"),
        "router": "random",
        "threshold": 0.5,
    }


class TestRoutedChatModelUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return RoutedChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return _params()

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        # Skipped on purpose (test_init_from_env): a router reads no environment variables; API keys and other
        # client settings belong to the two inner models.
        return {}, {}, {}

    @property
    def supports_image_inputs(self) -> bool:
        return True


class TestRoutedChatModelIntegration(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return RoutedChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return _params()

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def supports_model_override(self) -> bool:
        # A per-call `model=` names one of the two routed models ("strong", "weak" or a model name) and forces
        # that side; the suite checks it with the weak model's name.
        return True

    @property
    def model_override_value(self) -> str:
        return "fake-claude-weak"

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def supports_image_urls(self) -> bool:
        return True

    @property
    def supports_pdf_inputs(self) -> bool:
        return True

    @property
    def supports_audio_inputs(self) -> bool:
        return True

    @property
    def supports_image_tool_message(self) -> bool:
        return True

    @property
    def supports_pdf_tool_message(self) -> bool:
        return True

    @property
    def supports_anthropic_inputs(self) -> bool:
        return True

    @property
    def enable_vcr_tests(self) -> bool:
        # test_stream_time is skipped: it benchmarks recorded HTTP traffic (VCR cassettes) and there is no HTTP
        # here; benchmarks/langchain_overhead.py measures the wrapper's own cost instead.
        return False

    @pytest.fixture(autouse=True)
    def _offline_media(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def fake_get(url: str, *args: Any, **kwargs: Any) -> httpx.Response:
            return httpx.Response(200, content=_PNG, request=httpx.Request("GET", url))

        monkeypatch.setattr(httpx, "get", fake_get)
        monkeypatch.setenv("LANGCHAIN_TESTS_USER_AGENT", "routellm-plugin-tests/0.1 (offline)")
