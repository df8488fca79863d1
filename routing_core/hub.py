"""Hugging Face hub ids -> local snapshot folders, cached, honouring HF_HUB_OFFLINE, never fetching pickles.

`resolve_snapshot("routellm/bert_gpt4_augmented")` downloads (once) only what the official layouts need:
JSON configs, tokenizer files, safetensors weights and the causal router's prompt `.txt` files. Pickled
weights (`*.bin`, `*.pt`, `*.pkl`, ...) are never fetched, so nothing from the hub can run code here. With
`HF_HUB_OFFLINE=1` the local cache is the only source, and a missing id is one `HubError` line saying what to do.
`huggingface_hub` is an optional extra (`pip install 'routellm-plugin[hub]'`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from routing_core.errors import CheckpointError

#: What an official RouteLLM layout needs: configs, tokenizers, safetensors, the causal router's prompt files.
ALLOW_PATTERNS: tuple[str, ...] = (
    "*.json",
    "*.safetensors",
    "*.txt",
    "tokenizer.model",
    "sentencepiece.bpe.model",
    "*.jinja",
)
#: Never fetched, even if a pattern above would match (pickles and other executable formats).
IGNORE_PATTERNS: tuple[str, ...] = (
    "*.bin",
    "*.pt",
    "*.pth",
    "*.pkl",
    "*.pickle",
    "*.ckpt",
    "*.h5",
    "*.msgpack",
    "*.py",
)
INSTALL_HINT = "pip install 'routellm-plugin[hub]'"
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_TRUE = {"1", "on", "yes", "true"}


class HubError(CheckpointError):
    """A hub id could not be resolved to a local snapshot (offline and not cached, unknown repo, no network)."""


def looks_like_hub_id(name: object) -> bool:
    """Whether `name` is shaped like `org/name` and is not an existing local path."""
    if not isinstance(name, str) or not _HUB_ID.match(name) or ".." in name:
        return False
    return not Path(name).expanduser().exists()


def hub_offline() -> bool:
    """Whether HF_HUB_OFFLINE is set (read now, so a change after import counts)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE:
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(constants.HF_HUB_OFFLINE)


def hub_cache_dir() -> Path:
    """The hub cache folder in use: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub (read now)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return Path(os.environ["HUGGINGFACE_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def _import_hub() -> Any:
    try:
        import huggingface_hub
    except ImportError:
        raise HubError(f"loading from the Hugging Face hub needs huggingface_hub: {INSTALL_HINT}") from None
    return huggingface_hub


def resolve_snapshot(
    repo_id: str,
    *,
    repo_type: str = "model",
    revision: str | None = None,
    allow_patterns: tuple[str, ...] | list[str] = ALLOW_PATTERNS,
    token: str | bool | None = None,
) -> Path:
    """The local folder holding `repo_id`'s layout files, downloaded into the hub cache on first use.

    Offline (HF_HUB_OFFLINE) only the cache is read; an uncached id is one HubError line naming the id, the
    cache, the offline setting and the two ways out (go online once, or pass a local folder).
    """
    if not looks_like_hub_id(repo_id):
        raise HubError(f"{repo_id!r} is not a hub id of the form 'org/name'")
    hub = _import_hub()
    from huggingface_hub import errors as hub_errors

    offline = hub_offline()
    cache = hub_cache_dir()
    try:
        path = hub.snapshot_download(
            repo_id,
            repo_type=repo_type,
            revision=revision,
            cache_dir=str(cache),
            local_files_only=offline,
            allow_patterns=list(allow_patterns),
            ignore_patterns=list(IGNORE_PATTERNS),
            token=token,
        )
    except hub_errors.LocalEntryNotFoundError:
        if offline:
            raise HubError(
                f"{repo_id}: not in the local Hugging Face cache ({cache}) and HF_HUB_OFFLINE is set, so it cannot "
                "be downloaded; unset HF_HUB_OFFLINE on a machine with network to fetch it once, or pass a local "
                "folder with the same files"
            ) from None
        raise HubError(
            f"{repo_id}: could not download it (no connection to the Hugging Face hub?) and it is not in the local "
            f"cache ({cache}); check the network, or pass a local folder with the same files"
        ) from None
    except (hub_errors.RepositoryNotFoundError, hub_errors.RevisionNotFoundError) as e:
        raise HubError(
            f"{repo_id}: no such {repo_type} repository or revision on the Hugging Face hub ({type(e).__name__})"
        ) from None
    except hub_errors.GatedRepoError:
        raise HubError(
            f"{repo_id}: the repository is gated; accept its terms on huggingface.co and log in (hf auth login)"
        ) from None
    except hub_errors.HfHubHTTPError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise HubError(f"{repo_id}: the Hugging Face hub refused the download: {first}") from None
    folder = Path(path)
    if not folder.is_dir():
        raise HubError(f"{repo_id}: the snapshot folder {folder} is missing")
    return folder


__all__ = [
    "ALLOW_PATTERNS",
    "IGNORE_PATTERNS",
    "HubError",
    "hub_cache_dir",
    "hub_offline",
    "looks_like_hub_id",
    "resolve_snapshot",
]
