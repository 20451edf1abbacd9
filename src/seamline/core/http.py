"""One HTTP client per process for calls to providers (messengers, SMS gateways).

`httpx.post()` builds a client for every call, and with it a TLS context that loads the CA
bundle: about 55 ms of CPU per message before a byte is sent (measured by bench/outbound.py),
and no connection is ever reused. The shared client keeps connections to each provider open
and is safe to use from every worker thread; each call passes its own timeout. A forked
process gets its own client (the pool's sockets must not be shared across processes).
"""

from __future__ import annotations

import os
import threading

import httpx

_lock = threading.Lock()
_clients: dict[int, httpx.Client] = {}


def client() -> httpx.Client:
    pid = os.getpid()
    shared = _clients.get(pid)
    if shared is None:
        with _lock:
            shared = _clients.get(pid)
            if shared is None:
                shared = _clients[pid] = httpx.Client(limits=httpx.Limits(max_connections=100, max_keepalive_connections=20))
    return shared
