"""The LangChain test fakes live in `langchain_routellm.testing` (importable by cookbooks and benchmarks too);
this module re-exports them for the tests and adds the expected routing records the tests compare against."""

from __future__ import annotations

import hashlib
from typing import Any

from langchain_routellm.testing import *  # noqa: F403
from langchain_routellm.testing import __all__ as _fakes

#: The routing record of a `make_routed()` model for "a hard question" (the keyword "hard"): the strong FakeOpenAIChat.
HARD_RECORD: dict[str, Any] = {
    "router": "keyword",
    "threshold": 0.5,
    "win_rate": 0.9,
    "side": "strong",
    "model_name": "fake-gpt",
    "reason": "router",
    "source": "last_user_message",
    "text_hash": hashlib.sha256(b"a hard question").hexdigest()[:16],
    "text_preview": "a hard question",
}
#: The record fields of a decision the router did not make on a text (forced, or no text).
NO_TEXT_FIELDS: dict[str, Any] = {"win_rate": None, "text_hash": None, "text_preview": None}


__all__ = [*_fakes, "HARD_RECORD", "NO_TEXT_FIELDS"]
