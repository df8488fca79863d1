"""Scripted OpenAI / Anthropic HTTP servers on 127.0.0.1 that the real partner clients talk to.

    from provider_stubs import StubOpenAI, openai_chat

    with StubOpenAI() as srv:
        srv.fail_next(500)
        llm = openai_chat(srv, model="gpt-4o")
        ...
        assert srv.requests[-1]["seed"] == 7

Both servers are `ThreadingHTTPServer`s on port 0 (daemon threads, a 1024-deep listen queue, so hundreds of
concurrent async calls are fine) and context managers: `serve_forever` runs in a thread while the block is open;
on exit the server shuts down, closes its socket and wakes any request sleeping on `delay`.

Scripting (shared):
  fail_next(status, n=1, retry_after=None, body=None)  the next n requests fail with `status` (0: drop the socket)
  fail_when(predicate, status, ...)                     every request whose body matches fails (until reset)
  delay = seconds | callable(body) -> seconds           sleep before answering (timeouts, concurrency)
  reply = callable(body) -> str                          the answer text (default "<model>: <last user text>")
  use_tool = None | bool | name | callable(body)        answer with a tool call (None: only when tool_choice forces one)
  tool_args = None | dict | callable(body) -> dict      the tool call's arguments (None: filled from its schema)
  json_reply = callable(body) -> dict                    OpenAI response_format answers (default: filled schema)
  requests / last / models / paths                       what arrived (every request, failed ones too), thread-safe
  reset()                                                back to defaults, history cleared
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

__all__ = [
    "Recorded",
    "StubAnthropic",
    "StubOpenAI",
    "anthropic_chat",
    "fill_schema",
    "last_user_text",
    "llamaindex_openai",
    "openai_chat",
    "running",
]

Body = dict[str, Any]
S = TypeVar("S", bound="_StubServer")


class Recorded(dict):  # type: ignore[type-arg]
    """A parsed request body (a plain dict) with `.path` and `.headers` (lower-case names) attached."""

    path: str
    headers: dict[str, str]

    def __init__(self, body: Body, path: str, headers: dict[str, str]) -> None:
        super().__init__(body)
        self.path = path
        self.headers = headers


# ----------------------------------------------------------------------------------------------- helpers


def _text_of(content: Any) -> str:
    """Text of an OpenAI / Anthropic message content: a string or a list of blocks."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict) and isinstance(block.get("text"), str):
                parts.append(block["text"])
        return "".join(parts)
    return str(content)


def last_user_text(body: Body) -> str:
    """The last user message's text (chat or messages API), or the legacy completions prompt."""
    if "prompt" in body and "messages" not in body:
        p = body["prompt"]
        return p[-1] if isinstance(p, list) and p else str(p)
    for m in reversed(body.get("messages") or []):
        if m.get("role") == "user":
            return _text_of(m.get("content"))
    return ""


def _all_text(body: Body) -> str:
    out = [_text_of(body.get("system"))] if "system" in body else []
    out += [_text_of(m.get("content")) for m in body.get("messages") or []]
    if "prompt" in body:
        out.append(str(body["prompt"]))
    return " ".join(out)


def _count(text: str) -> int:
    return max(1, len(text.split()))


def _pieces(text: str) -> list[str]:
    """Stream chunks that join back to `text` exactly."""
    return re.findall(r"\S+\s*|\s+", text) or [""]


def fill_schema(schema: Any, root: Any = None) -> Any:
    """A value valid for a JSON schema: required strings "x", numbers 1, booleans true, arrays [], enums first."""
    root = schema if root is None else root
    if not isinstance(schema, dict):
        return "x"
    if "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return fill_schema(node, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(key) or [] if not (isinstance(o, dict) and o.get("type") == "null")]
        if options:
            return fill_schema(options[0], root)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {k: fill_schema(props.get(k, {"type": "string"}), root) for k in schema.get("required") or []}
    if kind == "array":
        return [fill_schema(schema.get("items", {}), root) for _ in range(int(schema.get("minItems", 0)))]
    return {"integer": 1, "number": 1, "boolean": True, "null": None}.get(kind or "string", "x")


# ----------------------------------------------------------------------------------------------- server


class _Failure:
    def __init__(self, status: int, retry_after: float | None, body: Any) -> None:
        self.status, self.retry_after, self.body = status, retry_after, body


class _Handler(BaseHTTPRequestHandler):
    server: _StubServer
    protocol_version = "HTTP/1.0"

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server._handle(self, "GET", {})

    def do_POST(self) -> None:  # noqa: N802
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self.send_json(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
            return
        self.server._handle(self, "POST", body if isinstance(body, dict) else {"_body": body})

    # -- writers (a client that already hung up is not an error of the stub)
    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def send_sse(self, events: list[tuple[str | None, Any]]) -> None:
        """`events`: (event name or None, data dict or raw string), written one flush at a time."""
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            for name, data in events:
                text = data if isinstance(data, str) else json.dumps(data)
                frame = (f"event: {name}\n" if name else "") + f"data: {text}\n\n"
                self.wfile.write(frame.encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass


class _StubServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True
    provider = "stub"

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._ids = 0
        self.reset()

    # -- scripting
    def reset(self) -> None:
        with self._lock:
            self._requests: list[Recorded] = []
            self._fail_queue: list[_Failure] = []
            self._fail_rules: list[tuple[Callable[[Recorded], bool], _Failure]] = []
        self.delay: float | Callable[[Recorded], float] = 0.0
        self.reply: Callable[[Recorded], str] = self.default_reply
        self.use_tool: None | bool | str | Callable[[Recorded], Any] = None
        self.tool_args: None | Body | Callable[[Recorded], Body] = None
        self.json_reply: Callable[[Recorded], Any] = self.default_json_reply

    def fail_next(self, status: int, n: int = 1, retry_after: float | None = None, body: Any = None) -> None:
        """The next `n` requests get `status` with the provider's error JSON (`body`: a dict sent as is, or the
        message). Status 0 closes the connection without an answer (a connection error for the client)."""
        with self._lock:
            self._fail_queue.extend(_Failure(status, retry_after, body) for _ in range(n))

    def fail_when(
        self,
        predicate: Callable[[Recorded], bool],
        status: int,
        retry_after: float | None = None,
        body: Any = None,
    ) -> None:
        """Every request whose recorded body matches `predicate` fails, until `reset()`."""
        with self._lock:
            self._fail_rules.append((predicate, _Failure(status, retry_after, body)))

    @staticmethod
    def default_reply(body: Recorded) -> str:
        return f"{body.get('model')}: {last_user_text(body)}"

    @staticmethod
    def default_json_reply(body: Recorded) -> Any:
        fmt = body.get("response_format") or {}
        if fmt.get("type") == "json_schema":
            return fill_schema((fmt.get("json_schema") or {}).get("schema") or {})
        return {}

    # -- history
    @property
    def requests(self) -> list[Recorded]:
        """A snapshot of every request so far (failed ones too), in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def last(self) -> Recorded:
        with self._lock:
            return self._requests[-1]

    @property
    def models(self) -> list[str | None]:
        return [r.get("model") for r in self.requests]

    @property
    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    # -- lifetime
    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self: S) -> S:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.serve_forever,
                kwargs={"poll_interval": 0.05},
                daemon=True,
                name=f"stub-{self.port}",
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self.server_close()

    def __enter__(self: S) -> S:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- dispatch
    def _next_id(self) -> int:
        with self._lock:
            self._ids += 1
            return self._ids

    def _handle(self, h: _Handler, method: str, body: Body) -> None:
        path = h.path.split("?", 1)[0]
        rec = Recorded(body, path, {k.lower(): v for k, v in h.headers.items()})
        with self._lock:
            self._requests.append(rec)
            failure = self._fail_queue.pop(0) if self._fail_queue else None
            rules = list(self._fail_rules)
        if failure is None:
            failure = next((f for pred, f in rules if pred(rec)), None)
        delay = self.delay(rec) if callable(self.delay) else self.delay
        if delay and self._closing.wait(delay):
            return  # the server is shutting down: drop the request
        if failure is not None:
            if failure.status == 0:
                h.close_connection = True
                try:
                    h.connection.shutdown(2)
                except OSError:
                    pass
                return
            payload = failure.body if isinstance(failure.body, dict) else self.error_json(failure)
            headers = {} if failure.retry_after is None else {"Retry-After": str(failure.retry_after)}
            h.send_json(failure.status, payload, headers)
            return
        route = self.routes().get((method, path))
        if route is None:
            h.send_json(404, self.error_json(_Failure(404, None, f"no route {method} {path}")))
            return
        route(h, rec)

    def routes(self) -> dict[tuple[str, str], Callable[[_Handler, Recorded], None]]:
        raise NotImplementedError

    def error_json(self, f: _Failure) -> Body:
        raise NotImplementedError

    # -- tool decision shared by both providers
    def _tool_args(self, body: Recorded, schema: Any) -> Body:
        args = self.tool_args
        if args is None:
            out = fill_schema(schema or {})
            return out if isinstance(out, dict) else {}
        return dict(args(body) if callable(args) else args)

    def _scripted_tool(self, body: Recorded) -> bool | str | None:
        choice = self.use_tool
        return choice(body) if callable(choice) else choice


class StubOpenAI(_StubServer):
    """POST /v1/chat/completions (JSON and SSE, tools, response_format) and /v1/completions (legacy)."""

    provider = "openai"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def routes(self) -> dict[tuple[str, str], Callable[[_Handler, Recorded], None]]:
        return {("POST", "/v1/chat/completions"): self._chat, ("POST", "/v1/completions"): self._completions}

    def error_json(self, f: _Failure) -> Body:
        kind = {
            400: "invalid_request_error",
            401: "authentication_error",
            403: "permission_error",
            404: "not_found_error",
            429: "rate_limit_exceeded",
        }.get(f.status, "server_error")
        msg = f.body if isinstance(f.body, str) else f"scripted {f.status}"
        return {"error": {"message": msg, "type": kind, "param": None, "code": kind}}

    def _pick_tool(self, body: Recorded) -> Body | None:
        """The tool to call, or None for a text answer."""
        tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"]
        if not tools:
            return None
        choice = body.get("tool_choice")
        scripted = self._scripted_tool(body)
        name: str | None = None
        if isinstance(choice, dict):
            name = (choice.get("function") or {}).get("name")
        elif isinstance(scripted, str):
            name = scripted
        wanted = isinstance(choice, dict) or choice == "required" or bool(scripted)
        if choice == "none" or not wanted or scripted is False:
            return None
        by_name = {t["function"]["name"]: t for t in tools}
        return by_name.get(name or "", tools[0])

    def _usage(self, body: Recorded, out: str) -> Body:
        p, c = _count(_all_text(body)), _count(out)
        return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}

    def _chat(self, h: _Handler, body: Recorded) -> None:
        n = self._next_id()
        cid, created, model = f"chatcmpl-stub-{n}", int(time.time()), body.get("model", "stub")
        tool = self._pick_tool(body)
        call: Body | None = None
        text: str | None = None
        if tool is not None:
            fn = tool["function"]
            args = json.dumps(self._tool_args(body, fn.get("parameters")))
            call = {
                "id": f"call_stub_{n}",
                "type": "function",
                "function": {"name": fn["name"], "arguments": args},
            }
            out = args
        elif (body.get("response_format") or {}).get("type") in ("json_schema", "json_object"):
            text = out = json.dumps(self.json_reply(body))
        else:
            text = out = str(self.reply(body))
        finish = "tool_calls" if call else "stop"
        usage = self._usage(body, out)
        base = {"id": cid, "created": created, "model": model, "system_fingerprint": "fp_stub"}

        if not body.get("stream"):
            message: Body = {"role": "assistant", "content": text, "refusal": None}
            if call:
                message["tool_calls"] = [call]
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            h.send_json(200, {**base, "object": "chat.completion", "choices": [choice], "usage": usage})
            return

        def chunk(delta: Body, finish_reason: str | None = None) -> Body:
            c = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            return {**base, "object": "chat.completion.chunk", "choices": [c]}

        events: list[tuple[str | None, Any]] = []
        if call:
            head = {**call, "index": 0, "function": {"name": call["function"]["name"], "arguments": ""}}
            events.append((None, chunk({"role": "assistant", "content": None, "tool_calls": [head]})))
            for piece in _pieces(call["function"]["arguments"]):
                events.append((None, chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})))
        else:
            events.append((None, chunk({"role": "assistant", "content": "", "refusal": None})))
            events += [(None, chunk({"content": piece})) for piece in _pieces(text or "")]
        events.append((None, chunk({}, finish)))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append((None, {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}))
        events.append((None, "[DONE]"))
        h.send_sse(events)

    def _completions(self, h: _Handler, body: Recorded) -> None:
        n = self._next_id()
        text = str(self.reply(body))
        base = {"id": f"cmpl-stub-{n}", "created": int(time.time()), "model": body.get("model", "stub")}
        usage = self._usage(body, text)
        if not body.get("stream"):
            choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}
            h.send_json(200, {**base, "object": "text_completion", "choices": [choice], "usage": usage})
            return

        def chunk(piece: str, finish: str | None = None) -> Body:
            c = {"text": piece, "index": 0, "logprobs": None, "finish_reason": finish}
            return {**base, "object": "text_completion", "choices": [c]}

        events: list[tuple[str | None, Any]] = [(None, chunk(p)) for p in _pieces(text)]
        events.append((None, chunk("", "stop")))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append((None, {**base, "object": "text_completion", "choices": [], "usage": usage}))
        events.append((None, "[DONE]"))
        h.send_sse(events)


class StubAnthropic(_StubServer):
    """POST /v1/messages: JSON and SSE, tool_use blocks when tools are given and required (or scripted)."""

    provider = "anthropic"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self) -> dict[tuple[str, str], Callable[[_Handler, Recorded], None]]:
        return {("POST", "/v1/messages"): self._messages}

    def error_json(self, f: _Failure) -> Body:
        kind = {
            400: "invalid_request_error",
            401: "authentication_error",
            403: "permission_error",
            404: "not_found_error",
            413: "request_too_large",
            429: "rate_limit_error",
            529: "overloaded_error",
        }.get(f.status, "api_error")
        msg = f.body if isinstance(f.body, str) else f"scripted {f.status}"
        return {"type": "error", "error": {"type": kind, "message": msg}}

    def _pick_tool(self, body: Recorded) -> Body | None:
        tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and "name" in t]
        if not tools:
            return None
        choice = body.get("tool_choice") or {}
        kind = choice.get("type", "auto") if isinstance(choice, dict) else "auto"
        scripted = self._scripted_tool(body)
        name = choice.get("name") if kind == "tool" else scripted if isinstance(scripted, str) else None
        if kind == "none" or scripted is False or not (kind in ("any", "tool") or scripted):
            return None
        by_name = {t["name"]: t for t in tools}
        return by_name.get(name or "", tools[0])

    def _messages(self, h: _Handler, body: Recorded) -> None:
        n = self._next_id()
        mid, model = f"msg_stub_{n}", body.get("model", "stub")
        tool = self._pick_tool(body)
        if tool is not None:
            args = self._tool_args(body, tool.get("input_schema"))
            block: Body = {"type": "tool_use", "id": f"toolu_stub_{n}", "name": tool["name"], "input": args}
            out, stop = json.dumps(args), "tool_use"
        else:
            out, stop = str(self.reply(body)), "end_turn"
            block = {"type": "text", "text": out}
        usage_in, usage_out = _count(_all_text(body)), _count(out)
        message = {
            "id": mid,
            "type": "message",
            "role": "assistant",
            "model": model,
            "stop_reason": stop,
            "stop_sequence": None,
        }
        if not body.get("stream"):
            usage = {"input_tokens": usage_in, "output_tokens": usage_out}
            h.send_json(200, {**message, "content": [block], "usage": usage})
            return
        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": usage_in, "output_tokens": 1},
        }
        events: list[tuple[str | None, Any]] = [
            ("message_start", {"type": "message_start", "message": start})
        ]
        if block["type"] == "tool_use":
            head = {**block, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in _pieces(out)]
        else:
            head = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in _pieces(out)]
        events.append(
            ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": head})
        )
        events += [
            ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": d}) for d in deltas
        ]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
        delta = {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}}
        events.append(("message_delta", {**delta, "usage": {"output_tokens": usage_out}}))
        events.append(("message_stop", {"type": "message_stop"}))
        h.send_sse(events)


# ----------------------------------------------------------------------------------------------- entry points


@contextmanager
def running(server_cls: type[S] = StubOpenAI) -> Iterator[S]:  # type: ignore[assignment]
    """`with running(StubAnthropic) as srv:` -- a started server, stopped and closed on exit."""
    with server_cls() as srv:
        yield srv


def openai_chat(server: StubOpenAI, model: str = "gpt-4o-mini", **kw: Any) -> Any:
    """A real `langchain_openai.ChatOpenAI` pointed at `server` (no retries, 5 s timeout unless overridden)."""
    import pytest

    mod = pytest.importorskip("langchain_openai")
    opts: Body = {"api_key": "sk-test", "max_retries": 0, "timeout": 5, **kw}
    return mod.ChatOpenAI(base_url=server.base_url, model=model, **opts)


def anthropic_chat(server: StubAnthropic, model: str = "claude-3-5-haiku-latest", **kw: Any) -> Any:
    """A real `langchain_anthropic.ChatAnthropic` pointed at `server` (no retries, 5 s timeout unless overridden)."""
    import pytest

    mod = pytest.importorskip("langchain_anthropic")
    opts: Body = {"api_key": "sk-ant-test", "max_retries": 0, "default_request_timeout": 5, **kw}
    if "timeout" in opts:
        opts["default_request_timeout"] = opts.pop("timeout")
    return mod.ChatAnthropic(base_url=server.base_url, model=model, **opts)


def llamaindex_openai(server: StubOpenAI, model: str = "gpt-4o-mini", **kw: Any) -> Any:
    """A real `llama_index.llms.openai.OpenAI` pointed at `server` (no retries, 5 s timeout unless overridden)."""
    import pytest

    mod = pytest.importorskip("llama_index.llms.openai")
    opts: Body = {"api_key": "sk-test", "max_retries": 0, "timeout": 5, **kw}
    return mod.OpenAI(api_base=server.base_url, model=model, **opts)
