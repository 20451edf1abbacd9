"""What one client may send: request rates on the public endpoints, body sizes everywhere, and
no NUL character in any text.

Three plain ASGI middlewares, installed by `install_limits` in the app factory (inside the request
log, so refused requests are logged and counted like any other):

- `RateLimit` — the public endpoints (collection, the web chat, the call-back form, login codes,
  push registrations, the demo shop's push routes) are *groups* (`group_of`); each group has a
  budget per client IP and one per key (`Settings.rate_limits`, requests per minute). The
  middleware charges the IP before the body is read; the key is charged by `charge_key` where
  the endpoint knows it (a source's write key, an API key: `core/deps.require`), which is a
  no-op outside the groups. Over budget: 429 `rate_limited` with `Retry-After`.
- `BodyLimit` — every request body is at most `Settings.http_max_body_bytes`, except the routes
  that take files or provider payloads, which have their own larger limits (`body_limits`).
  A declared `Content-Length` over the limit is refused before anything is read; a chunked
  body is counted as it streams and refused the moment it passes the limit. 413 in the error
  shape of `core/errors.py`.
- `NoNul` — PostgreSQL text cannot hold a NUL character (SQLite would store it): a NUL in the
  path, the query string or a JSON or form body is a 422 `validation_error` naming each place
  (`details.errors[].type` `nul_character`), on both databases, before any route runs. Bodies
  not checked here: collection, whose batches reject only the events with one
  (`events/ingest.py`); the messengers' and SMS gateways' webhooks and posted emails, whose
  messages are kept without their NULs (`inbox/delivery.py`); files (attachments, stock files,
  which report bad rows themselves). See `core/schemas.py`.

The budgets are token buckets kept in the process (`TokenBuckets`): with `seamline serve
--workers N` each process counts on its own, so a client may get up to N times the budget
(a keep-alive connection stays with one process). The client's address is the connection's, as
uvicorn reports it: behind a reverse proxy, uvicorn takes it from `X-Forwarded-For` when the
proxy's address is in `FORWARDED_ALLOW_IPS` (default 127.0.0.1). IPv6 clients are counted per
/64, the block one host usually holds.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import FastAPI, Request

from seamline.core.config import Settings
from seamline.core.errors import PayloadTooLarge, TooManyRequests, UnsupportedMediaType, error_body
from seamline.core.schemas import nul_paths

#: Where `RateLimit` leaves the request's group for `charge_key` (an ASGI scope extension key).
SCOPE_GROUP = "seamline.rate_limit_group"
_COLLECTION = frozenset(f"/v1/{name}" for name in ("identify", "track", "page", "screen", "group", "alias", "batch"))
_ATTACHMENTS = ("/v1/webchat/attachments", "/v1/inbox/attachments")
_EMAILS = ("/v1/channels/email/messages", "/v1/inbox/channels/email/messages")  # the second: its deprecated name
_STOCK_FILES = "/v1/stock/imports"
_CUSTOMER_FILES = "/v1/customers/imports"
_PUSH_REGISTRATIONS = frozenset({"/v1/channels/webpush/subscriptions", "/v1/channels/mobilepush/devices"})
_SHOP_PUSH = ("/shop/push/", "/app/push/")  # the demo storefront's own push routes (a logged-in visitor)


def group_of(method: str, path: str) -> str | None:
    """The rate-limit group of a request (writes, and the analytics' heavy reads), or None."""
    if method == "GET" and path.startswith("/v1/analytics/"):
        return "analytics"  # each request may scan millions of rows
    if path.startswith(("/t/", "/u/")):
        return "tracking"  # marketing messages' public links: anyone may follow them
    if method in ("POST", "PATCH") and path.startswith("/v1/marketing/segments"):
        return "segments"  # an estimate or an evaluation may read a million profiles
    if method != "POST":
        return None
    if path in _COLLECTION:
        return "collection"
    if path.startswith("/v1/webchat/"):
        return "webchat"
    if path == "/v1/channels/telephony/callback-requests":
        return "callback"
    if path in ("/v1/auth/login-codes", "/v1/auth/login-codes/verify"):
        return "login_codes"
    if path in _PUSH_REGISTRATIONS:
        return "push"
    if path.startswith(_SHOP_PUSH):
        return "shop_push"
    return None


class TokenBuckets:
    """Token buckets by key: `per_minute` requests at once at most, refilled at `per_minute` a
    minute. Thread-safe (endpoints charge keys from the thread pool). Buckets that have filled up
    again are dropped once a minute, and at most `max_buckets` are kept (the oldest go first), so
    a stream of made-up keys cannot grow the process."""

    def __init__(self, *, max_buckets: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self._buckets: dict[Any, list[float]] = {}  # key -> [tokens, at, capacity]
        self._lock = threading.Lock()
        self._clock = clock
        self._max = max_buckets
        self._next_sweep = clock() + 60

    def take(self, key: Any, per_minute: int) -> float:
        """0.0 when the request may go ahead (one token taken), else the seconds until it may."""
        now = self._clock()
        rate = per_minute / 60.0
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if now >= self._next_sweep or len(self._buckets) >= self._max:
                    self._sweep(now)
                self._buckets[key] = [per_minute - 1.0, now, float(per_minute)]
                return 0.0
            tokens = min(float(per_minute), bucket[0] + (now - bucket[1]) * rate)
            bucket[1], bucket[2] = now, float(per_minute)
            if tokens >= 1.0:
                bucket[0] = tokens - 1.0
                return 0.0
            bucket[0] = tokens
            return (1.0 - tokens) / rate

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + 60
        full = [k for k, (tokens, at, capacity) in self._buckets.items() if tokens + (now - at) * capacity / 60.0 >= capacity]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self._max:  # still too many: forget the oldest half
            for key in list(self._buckets)[: len(self._buckets) // 2]:
                del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


def client_address(scope: dict[str, Any]) -> str:
    """The client's IP (IPv6: its /64), as the server reports it."""
    client = scope.get("client")
    host = client[0] if client else "unknown"
    if ":" in host:
        try:
            return str(ipaddress.IPv6Network((host, 64), strict=False))
        except ValueError:
            return host
    return host


@dataclass(frozen=True, slots=True)
class Refusal:
    group: str
    per: str  # "ip" or "key"
    per_minute: int
    retry_after: int

    @property
    def message(self) -> str:
        who = "this address" if self.per == "ip" else "this key"
        return f"Too many requests from {who} (at most {self.per_minute} a minute): try again in {self.retry_after} s"

    @property
    def details(self) -> dict[str, Any]:
        return {"group": self.group, "per": self.per, "limit_per_minute": self.per_minute,
                "retry_after_seconds": self.retry_after}


class RateLimiter:
    """The budgets of `Settings.rate_limits` over one set of buckets (one per app)."""

    def __init__(self, settings: Settings, buckets: TokenBuckets | None = None):
        self.limits = {name: (limit.ip, limit.key) for name, limit in settings.rate_limits.items()}
        self.buckets = buckets or TokenBuckets()

    def charge(self, group: str, per: str, who: str) -> Refusal | None:
        per_minute = self.limits[group][0 if per == "ip" else 1]
        if per_minute <= 0:
            return None
        wait = self.buckets.take((group, per, who), per_minute)
        return Refusal(group, per, per_minute, max(1, math.ceil(wait - 1e-6))) if wait > 0 else None


def charge_key(request: Request, key: str) -> None:
    """Count the request against its key's budget (429 `rate_limited` when spent). A no-op for
    requests outside the rate-limit groups, so shared code (API-key checks) may call it always."""
    group = request.scope.get(SCOPE_GROUP)
    if group is None:
        return
    refusal = request.app.state.rate_limiter.charge(group, "key", key)
    if refusal is not None:
        raise TooManyRequests(refusal.message, code="rate_limited", details=refusal.details)


async def _refuse(send: Callable, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
    payload = orjson.dumps(body)
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), *headers]})
    await send({"type": "http.response.body", "body": payload})


class RateLimit:
    """Charges the client's IP for requests of a rate-limit group; see the module's docstring."""

    def __init__(self, app, limiter: RateLimiter):  # noqa: ANN001
        self.app, self.limiter = app, limiter

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] == "http":
            group = group_of(scope["method"], scope["path"])
            if group is not None:
                scope[SCOPE_GROUP] = group
                refusal = self.limiter.charge(group, "ip", client_address(scope))
                if refusal is not None:
                    await _refuse(send, 429, error_body("rate_limited", refusal.message, refusal.details),
                                  [(b"retry-after", str(refusal.retry_after).encode())])
                    return
        await self.app(scope, receive, send)


# --- body sizes ----------------------------------------------------------------------------------

#: Multipart framing around an attachment (boundaries, part headers, the file name).
MULTIPART_SLACK = 64 * 1024
#: The providers' webhooks (/v1/channels/<provider>/...) each check their own limit (256 KB to
#: WhatsApp's 3 MB) on the raw body they verify; this only bounds what is read before that.
PROVIDER_WEBHOOK_MAX_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class BodyLimits:
    default: int
    exact: dict[str, tuple[int, str]]
    prefixes: tuple[tuple[str, int, str], ...]

    def of(self, path: str) -> tuple[int, str]:
        """(largest body in bytes, error code) for a path."""
        found = self.exact.get(path)
        if found is not None:
            return found
        for prefix, limit, code in self.prefixes:
            if path.startswith(prefix):
                return limit, code
        return self.default, "payload_too_large"


def body_limits(settings: Settings) -> BodyLimits:
    """`http_max_body_bytes` for every route, but these, which carry files or provider payloads
    (each still checks its own exact limit on what it reads)."""
    default = settings.http_max_body_bytes
    attachment = (max(default, settings.inbox_attachment_max_bytes + MULTIPART_SLACK), "attachment_too_large")
    # Collection answers a body over the batch limit itself (400 batch_too_large, also for
    # gzip that inflates past it); twice that bounds what it reads.
    collection = (max(default, 2 * settings.event_batch_max_bytes), "payload_too_large")
    exact = {
        **{path: collection for path in _COLLECTION},
        **{path: attachment for path in _ATTACHMENTS},
        **{path: (max(default, settings.inbox_email_max_bytes), "email_too_large") for path in _EMAILS},
        _STOCK_FILES: (max(default, settings.commerce_sync_max_bytes), "payload_too_large"),
        _CUSTOMER_FILES: (max(default, settings.customers_import_max_bytes), "payload_too_large"),
        "/v1/channels/telephony/callback-requests": (default, "payload_too_large"),  # a public form, not a provider
        **{path: (default, "payload_too_large") for path in _PUSH_REGISTRATIONS},  # API bodies, not a provider's
    }
    prefixes = (("/v1/channels/", max(default, PROVIDER_WEBHOOK_MAX_BYTES), "payload_too_large"),
                # The demo's stand-in for the providers' APIs (web/demo_sink.py) receives agents' files.
                ("/demo/sink/", attachment[0], "payload_too_large"))
    return BodyLimits(default, exact, prefixes)


class _BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuses request bodies over their route's limit with a 413; see the module's docstring."""

    def __init__(self, app, limits: BodyLimits):  # noqa: ANN001
        self.app, self.limits = app, limits

    async def _too_large(self, send, limit: int, code: str) -> None:  # noqa: ANN001
        message = f"The request body may be at most {limit} bytes"
        # The rest of the body is not read: the connection cannot carry another request.
        await _refuse(send, 413, error_body(code, message, {"max_bytes": limit}), [(b"connection", b"close")])

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, code = self.limits.of(scope["path"])
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None:
            # The server delivers no more than a declared length, so checking it is enough.
            if declared.isdigit() and int(declared) > limit:
                await self._too_large(send, limit, code)
                return
            await self.app(scope, receive, send)
            return

        # No declared length (chunked): count the bytes as they come.
        received, over, started = 0, False, False

        async def counted_receive() -> dict[str, Any]:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            nonlocal started
            if over:
                return  # the app's own answer to the failed read (FastAPI makes it a 400): ours replaces it
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except _BodyTooLarge:
            pass
        if over and not started:
            await self._too_large(send, limit, code)


# --- NUL characters ------------------------------------------------------------------------------

#: Bodies not checked by `NoNul` (their query strings and paths are): collection (per event),
#: files, and what providers send, stored raw and normalized without NULs.
_NUL_UNCHECKED_BODIES = _COLLECTION | {*_ATTACHMENTS, *_EMAILS, _STOCK_FILES, _CUSTOMER_FILES}
_NUL_UNCHECKED_PREFIXES = tuple(f"/v1/channels/{name}/" for name in ("telegram", "whatsapp", "vk", "viber", "sms"))
_NUL_ESCAPE = b"\\u0000"  # how JSON writes a NUL (raw control characters are not JSON)


def _body_kind(headers: list[tuple[bytes, bytes]]) -> str | None:
    """"json" or "form" for the bodies FastAPI decodes as such (no content type: JSON), else None."""
    content_type = next((v for k, v in headers if k == b"content-type"), None)
    if content_type is None:
        return "json"
    media = content_type.split(b";", 1)[0].strip().lower()
    if media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json")):
        return "json"
    if media == b"application/x-www-form-urlencoded":
        return "form"
    return None


def _query_nuls(raw: bytes, where: str) -> list[list[str]]:
    if b"%00" not in raw:
        return []
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    return [[where, name.replace("\x00", "\\0")] for name, value in pairs if "\x00" in name or "\x00" in value]


def _json_nuls(body: bytes) -> list[list[str]]:
    if _NUL_ESCAPE not in body:
        return []
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []  # the route says what is wrong with it
    return [["body", *(part.replace("\x00", "\\0") for part in path)] for path in nul_paths(document)]


def nul_refusal(places: list[list[str]]) -> dict[str, Any]:
    """The 422 body naming where the NULs are, in the shape of FastAPI's validation errors."""
    problems = [{"location": place, "message": "must not contain NUL characters (\\u0000)", "type": "nul_character"}
                for place in places]
    return error_body("validation_error", f"{'.'.join(places[0])}: {problems[0]['message']}", {"errors": problems})


class NoNul:
    """Refuses a NUL character in a request's path, query string or JSON/form body (422); see the
    module's docstring. A body it checks is read whole first (within `BodyLimit`), then handed on."""

    def __init__(self, app):  # noqa: ANN001
        self.app = app

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        places = ([["path"]] if "\x00" in path else []) + _query_nuls(scope["query_string"], "query")
        if places and scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "NUL character in the request"})
            return
        kind = _body_kind(scope["headers"]) if scope["type"] == "http" and scope["method"] != "GET" else None
        if kind is None or path in _NUL_UNCHECKED_BODIES or path.startswith(_NUL_UNCHECKED_PREFIXES):
            if places:
                await _refuse(send, 422, nul_refusal(places), [])
                return
            await self.app(scope, receive, send)
            return

        messages: list[dict[str, Any]] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        places += _json_nuls(body) if kind == "json" else _query_nuls(body, "body")
        if places:
            await _refuse(send, 422, nul_refusal(places), [])
            return

        async def replay() -> dict[str, Any]:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


def install_limits(app: FastAPI, settings: Settings) -> None:
    """Add the middlewares (call before `install_observability`, so it logs what they refuse)."""
    app.state.rate_limiter = RateLimiter(settings)
    app.add_middleware(NoNul)
    app.add_middleware(BodyLimit, limits=body_limits(settings))
    app.add_middleware(RateLimit, limiter=app.state.rate_limiter)  # outside: a flood is refused before its body


async def read_upload(request: Request, *, formats: dict[str, str], expected: str, limit: int) -> tuple[str, bytes]:
    """A file sent as the raw body (an import): its format, by `Content-Type` among `formats`
    (content type -> format; 415 naming `expected` otherwise), and its bytes, read up to
    `limit` (413 the moment it passes, for a chunked body the limit middleware cannot size)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in formats:
        raise UnsupportedMediaType(f"Send the file as {expected}, not {content_type or 'nothing'}", code="unsupported_media_type")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"The file is larger than {limit} bytes", code="payload_too_large")
    return formats[content_type], bytes(body)

