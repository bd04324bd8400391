"""`churn serve`: MLflow's scoring server for a model of the configured registry, guarded.

The app is MLflow's own (`mlflow.pyfunc.scoring_server.init`, what `mlflow models serve`
runs); this module only puts a thin ASGI guard in front of it, because MLflow 3's server:

* reads a `text/csv` body with the signature's column types, which the servable's "any
  type" columns do not have, so every CSV request failed. The guard reads CSV as text (as
  prep reads the raw file; types are the contract's job) and hands MLflow the same rows as
  `dataframe_split` JSON, so CSV works as MLflow documents it;
* parses JSON with `json.loads`, so a deeply nested array raises RecursionError: a 500.
  The guard refuses JSON nested deeper than `MAX_JSON_DEPTH` with a 400 first;
* has no request size limit. The guard answers 413 above `max_request_bytes`;
* echoes the whole request ("Failed to predict data '<frame>'", "Input: <body>") and a
  stack trace in error bodies. The guard keeps only the reason (which names the column
  and the value) and never passes a stack trace or a 5xx body on.

The model is loaded only from the configured registry (`registry.model_name` on the
configured tracking store), by alias or version, and must be a churn servable.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from churn.config import Params
from churn.errors import ChurnError

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_REQUEST_BYTES = 1 << 20  # 1 MiB: thousands of records per request
MAX_JSON_DEPTH = 32  # {"dataframe_records": [{...}]} needs 3; "dataframe_split" 4
MAX_MESSAGE_CHARS = 2000
INVOCATIONS = "/invocations"

_BRACKETS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


@dataclass(frozen=True)
class ServedModel:
    app: App
    model_uri: str
    version: str


def json_depth(body: bytes, limit: int) -> int:
    """Nesting depth of a JSON text (strings skipped), counted up to `limit` + 1 at most."""
    depth = deepest = 0
    for match in _BRACKETS.finditer(body):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        elif token in (b"]", b"}"):
            depth -= 1
    return deepest


def csv_as_json(body: bytes) -> bytes:
    """A CSV request body as MLflow's `dataframe_split` JSON, every cell kept as text."""
    import pandas as pd

    from churn.core.contract import check_delimiter

    try:
        frame = pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise ChurnError(f"the CSV body is not a readable CSV with a header row ({exc.__class__.__name__})") from None
    check_delimiter(frame, "the CSV body")
    split = json.loads(frame.to_json(orient="split", index=False))
    return json.dumps({"dataframe_split": {"columns": split["columns"], "data": split["data"]}}).encode()


def clean_error(status: int, body: bytes) -> bytes:
    """An error body with the reason only: no echoed request, no stack trace."""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = {"message": body.decode("utf-8", "replace")}
    if not isinstance(payload, dict):
        payload = {"message": str(payload)}
    if status >= 500:
        message, code = "internal error while scoring; the server log has the details", "INTERNAL_ERROR"
    else:
        message, code = str(payload.get("message", "")), str(payload.get("error_code", "BAD_REQUEST"))
        # "Failed to predict data '<the request as a frame>'. \nError: <reason>"; schema
        # enforcement nests a second "Error: "; the reason is what follows the last one.
        if message.startswith("Failed to "):
            message = message.rpartition("Error: ")[2] or "the records do not fit the model's input"
        message = message.split("\nInput:")[0].strip()  # a JSON syntax error echoes the body
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[: MAX_MESSAGE_CHARS - 3] + "..."
    return json.dumps({"error_code": code, "message": message}).encode()


async def _reply(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error_code": code, "message": message}).encode()
    await send({"type": "http.response.start", "status": status, "headers": _headers(len(body))})
    await send({"type": "http.response.body", "body": body})


def _headers(length: int) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/json"), (b"content-length", str(length).encode())]


class RequestGuard:
    """ASGI middleware in front of MLflow's scoring app; see the module docstring."""

    def __init__(self, app: App, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES) -> None:
        self.app = app
        self.max_request_bytes = max_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != INVOCATIONS:
            await self.app(scope, receive, send)
            return
        headers = {key.lower(): value for key, value in scope.get("headers", [])}
        too_big = f"request body larger than {self.max_request_bytes} bytes: send fewer records per request"
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_request_bytes:
            await _reply(send, 413, "REQUEST_TOO_LARGE", too_big)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_request_bytes:
                await _reply(send, 413, "REQUEST_TOO_LARGE", too_big)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)

        mime = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
        if mime == "application/json" and json_depth(body, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
            await _reply(send, 400, "BAD_REQUEST", f"JSON nested deeper than {MAX_JSON_DEPTH} levels: "
                         'send {"dataframe_records": [{...}, ...]} or {"dataframe_split": {...}}')
            return
        if mime == "text/csv":
            try:
                body = csv_as_json(body)
            except ChurnError as exc:
                await _reply(send, 400, "BAD_REQUEST", str(exc))
                return
            headers[b"content-type"] = b"application/json"
        headers[b"content-length"] = str(len(body)).encode()
        inner_scope = {**scope, "headers": list(headers.items())}

        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        start: Message = {}
        parts: list[bytes] = []

        async def filtered(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                if message["status"] < 400:
                    await send(message)
                return
            if message["type"] != "http.response.body" or start.get("status", 200) < 400:
                await send(message)
                return
            parts.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            cleaned = clean_error(start["status"], b"".join(parts))
            await send({"type": "http.response.start", "status": start["status"], "headers": _headers(len(cleaned))})
            await send({"type": "http.response.body", "body": cleaned})

        try:
            await self.app(inner_scope, replay, filtered)
        except Exception:  # whatever MLflow raised, the client gets no trace
            log.exception("scoring failed")
            if not start:
                await _reply(send, 500, "INTERNAL_ERROR", "internal error while scoring; the server log has the details")


def load_served_model(params: Params, alias: str | None = None, version: str | None = None) -> tuple[Any, str, str]:
    """(pyfunc model, models:/ URI asked for, version) from the configured registry only."""
    from churn.core.tracking import connect
    from churn.deployment.batch import load_scorer, resolve_model_uri
    from churn.servable.pyfunc import ChurnModel

    model_uri = resolve_model_uri(params, alias, version)
    connect(params)
    _, resolved = load_scorer(model_uri)  # checks it exists and is a churn servable
    import mlflow.pyfunc

    pinned = f"models:/{params.registry.model_name}/{resolved}"
    model = mlflow.pyfunc.load_model(pinned)
    if not isinstance(model.unwrap_python_model(), ChurnModel):
        raise ChurnError(f"{pinned} is not a churn servable model")
    return model, model_uri, resolved


def build_app(params: Params, alias: str | None = None, version: str | None = None,
              max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES) -> ServedModel:
    from mlflow.pyfunc.scoring_server import init

    model, model_uri, resolved = load_served_model(params, alias, version)
    return ServedModel(RequestGuard(init(model), max_request_bytes), model_uri, resolved)


def serve(params: Params, *, host: str, port: int, alias: str | None = None, version: str | None = None,
          max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES) -> None:
    import uvicorn

    if max_request_bytes < 1:
        raise ChurnError(f"--max-request-bytes must be positive, got {max_request_bytes}")
    served = build_app(params, alias, version, max_request_bytes)
    print(f"serving {served.model_uri} (v{served.version}) on http://{host}:{port}/invocations", flush=True)
    uvicorn.run(served.app, host=host, port=port, log_level="warning")
