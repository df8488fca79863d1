"""One model, one name: different spellings across data sets map to a canonical name."""

from __future__ import annotations

import re

# canonical -> spellings seen in the paper's data, alpaca_eval, routerbench, zeroeval and Chatbot Arena
ALIASES: dict[str, tuple[str, ...]] = {
    "gpt-4-1106-preview": (
        "gpt4_1106_preview",
        "gpt-4-1106-preview",
        "gpt-4-turbo-1106",
        "openai/gpt-4-1106-preview",
    ),
    "mixtral-8x7b-instruct-v0.1": (
        "mistralai/Mixtral-8x7B-Instruct-v0.1",
        "Mixtral-8x7B-Instruct-v0.1",
        "mixtral-8x7b-instruct-v0.1",
        "mistralai/mixtral-8x7b-chat",
        "mixtral-8x7b-chat",
        "mixtral-8x7b-instruct",
    ),
    "gpt-4-0613": ("gpt4", "gpt-4-0613"),
    "gpt-4-0314": ("gpt-4-0314",),
    "gpt-3.5-turbo-1106": ("gpt-3.5-turbo-1106", "gpt35_turbo_1106"),
    "claude-2.1": ("claude-2.1",),
    "claude-2.0": ("claude-2", "claude-v2", "claude-2.0"),
    "claude-1": ("claude", "claude-v1", "claude-1"),
    "claude-instant-1": ("claude-instant-v1", "claude-instant-1.2", "claude-instant-1"),
    "llama-2-70b-chat": ("llama-2-70b-chat-hf", "meta/llama-2-70b-chat", "llama-2-70b-chat"),
    "mistral-7b-instruct-v0.2": (
        "Mistral-7B-Instruct-v0.2",
        "mistralai/mistral-7b-chat",
        "mistral-7b-instruct-v0.2",
    ),
    "yi-34b-chat": ("zero-one-ai/Yi-34B-Chat", "Yi-34B-Chat", "yi-34b-chat"),
}

#: The paper's model pair, the default strong and weak models of the bundled routers, data sets and the CLI.
DEFAULT_STRONG_MODEL = "gpt-4-1106-preview"
DEFAULT_WEAK_MODEL = "mixtral-8x7b-instruct-v0.1"

_LOOKUP: dict[str, str] = {}
for _canon, _names in ALIASES.items():
    for _n in _names:
        _LOOKUP[_n.lower()] = _canon


def canonical_model(name: str) -> str:
    """The canonical spelling of a model name (unknown names are lower-cased and stripped)."""
    key = name.strip().lower()
    return _LOOKUP.get(key, key)


# Tiers used to turn multi-model data into strong-vs-weak labels for the bundled GPT-4 vs Mixtral pair.
STRONG_TIER = re.compile(r"^(gpt-4-1106-preview|gpt-4-turbo(-2024-04-09)?|gpt-4-0125-preview)$")
WEAK_TIER = re.compile(r"^mixtral-8x7b-instruct-v0\.1$")
