"""A periodic job keeps running after a failing pass, and stops when asked."""

from __future__ import annotations

import threading

from seamline.core.jobs import PeriodicJob


def test_a_failing_pass_does_not_end_the_loop():
    passes: list[int] = []
    three = threading.Event()

    def work() -> None:
        passes.append(1)
        if len(passes) >= 3:
            three.set()
        if len(passes) == 1:
            raise RuntimeError("the database is down")

    job = PeriodicJob("test", 0.01, work).start()
    assert three.wait(10)
    job.stop()
    count = len(passes)
    assert not job._thread.is_alive()
    assert len(passes) == count  # nothing runs after stop
