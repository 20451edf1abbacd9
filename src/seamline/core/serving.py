"""`seamline serve --workers N`: N server processes that share the load evenly.

Uvicorn's own workers share one listening socket. With keep-alive connections that spreads
badly: Linux wakes the most recently waiting process first, so the worker that accepts first
tends to accept everything, and the machine's other cores sit idle (measured: one of two
workers took all 32 connections of `bench/orders_http.py`). Here every worker binds its own
socket to the same address with `SO_REUSEPORT`, and the kernel spreads new connections across
them by hash. Each worker is a plain `uvicorn.Server` in a spawned process; this supervisor
restarts a worker that dies, and stops them all on SIGINT or SIGTERM.

Where `SO_REUSEPORT` does not exist, or with port 0, uvicorn's shared socket is used instead."""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading
import time
from typing import Any

import uvicorn

logger = logging.getLogger("seamline.serve")

#: A worker that dies sooner than this after starting is a start-up failure (e.g. the port is
#: taken by another program): the supervisor stops instead of restarting it in a loop.
START_GRACE_SECONDS = 5.0


def run(app: str, *, host: str, port: int, workers: int, **options: Any) -> None:
    if workers <= 1 or port == 0 or not hasattr(socket, "SO_REUSEPORT"):
        uvicorn.run(app, host=host, port=port, workers=workers, **options)
        return
    _check_port_free(host, port)
    _Supervisor(app, host, port, workers, options).run()


def _socket(host: str) -> socket.socket:
    return socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)


def _check_port_free(host: str, port: int) -> None:
    """Bind once without `SO_REUSEPORT`: it fails if anything listens there, even another
    `seamline serve` whose reuse-port sockets would otherwise silently share the port with us."""
    probe = _socket(host)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as exc:
        raise SystemExit(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    finally:
        probe.close()


def _listening_socket(host: str, port: int) -> socket.socket:
    sock = _socket(host)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _worker(app: str, host: str, port: int, options: dict[str, Any]) -> None:
    sock = _listening_socket(host, port)
    config = uvicorn.Config(app, host=host, port=port, **options)
    uvicorn.Server(config).run(sockets=[sock])


class _Supervisor:
    def __init__(self, app: str, host: str, port: int, workers: int, options: dict[str, Any]):
        self.args = (app, host, port, options)
        self.count = workers
        self.context = multiprocessing.get_context("spawn")
        self.processes: list[tuple[multiprocessing.process.BaseProcess, float]] = []
        self.stopping = threading.Event()

    def _start_one(self) -> tuple[multiprocessing.process.BaseProcess, float]:
        process = self.context.Process(target=_worker, args=self.args, name="seamline-worker")
        process.start()
        return process, time.monotonic()

    def run(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: self.stopping.set())
        self.processes = [self._start_one() for _ in range(self.count)]
        logger.info("serving on %s:%s with %d workers (SO_REUSEPORT)", self.args[1], self.args[2], self.count)
        failed = False
        while not self.stopping.wait(0.5):
            for index, (process, started) in enumerate(self.processes):
                if process.is_alive():
                    continue
                if time.monotonic() - started < START_GRACE_SECONDS:
                    logger.error("worker %s exited with %s while starting; stopping", process.pid, process.exitcode)
                    failed = True
                    self.stopping.set()
                    break
                logger.warning("worker %s exited with %s; starting another", process.pid, process.exitcode)
                self.processes[index] = self._start_one()
        for process, _ in self.processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        for process, _ in self.processes:
            process.join(30)
            if process.is_alive():
                process.kill()
        if failed:
            raise SystemExit(1)
