"""The garbage collector tuned for a long-running process (the server, a job worker, a cron run).

Everything loaded at start (modules, SQLAlchemy mappers, Pydantic models, routes: some 350,000
tracked objects) lives as long as the process. With the defaults, every full collection walks
all of it, and a batch of work that allocates many short-lived containers (a batch of 100
events; 500 marketing messages with their parameters and rows) triggers full collections often
enough to cost more than the work: measured with bench/marketing_messages.py on PostgreSQL,
1,206 messages/s with the defaults, 2,108/s with the start-up objects frozen.
"""

from __future__ import annotations

import gc

#: Young objects are collected after this many allocations (the default is 700).
YOUNG_THRESHOLD = 50_000


def settle() -> None:
    """Call once the process has loaded and wired everything: what exists now is kept out of
    the collector's scans (`gc.freeze`), and young objects are collected less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 20, 100)
