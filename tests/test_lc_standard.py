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


class _Routed:
    """What both suites test: a RoutedChatModel over two fake "providers" with the random router."""

    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return RoutedChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "strong": FakeOpenAIChat(model_name="fake-gpt-strong"),
            "weak": FakeAnthropicChat(model_name="fake-claude-weak"),
            "router": "random",
            "threshold": 0.5,
        }

    # The suites' feature flags are read-only properties; plain class attributes override them the same way.
    supports_image_inputs = True


class TestRoutedChatModelUnit(_Routed, ChatModelUnitTests):
    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        # Skipped on purpose (test_init_from_env): a router reads no environment variables; API keys and other
        # client settings belong to the two inner models.
        return {}, {}, {}


class TestRoutedChatModelIntegration(_Routed, ChatModelIntegrationTests):
    has_tool_choice = True
    supports_json_mode = True
    # A per-call `model=` names one of the two routed models ("strong", "weak" or a model name) and forces that
    # side; the suite checks it with the weak model's name.
    supports_model_override = True
    model_override_value = "fake-claude-weak"
    supports_image_urls = True
    supports_pdf_inputs = True
    supports_audio_inputs = True
    supports_image_tool_message = True
    supports_pdf_tool_message = True
    supports_anthropic_inputs = True
    # test_stream_time is skipped: it benchmarks recorded HTTP traffic (VCR cassettes) and there is no HTTP here;
    # benchmarks/langchain_overhead.py measures the wrapper's own cost instead.
    enable_vcr_tests = False

    @pytest.fixture(autouse=True)
    def _offline_media(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def fake_get(url: str, *args: Any, **kwargs: Any) -> httpx.Response:
            return httpx.Response(200, content=_PNG, request=httpx.Request("GET", url))

        monkeypatch.setattr(httpx, "get", fake_get)
        monkeypatch.setenv("LANGCHAIN_TESTS_USER_AGENT", "routellm-plugin-tests/0.1 (offline)")
