"""A worker process for the queue's crash tests: the app's runtime plus two probe tasks.

    python -m tests.core.queue.probe_worker MARKERS_DIR

`probe.award` gives a customer points through the loyalty ledger inside the job's transaction
(no idempotency key of its own: only the queue stands between a crash and a second award).
When MARKERS_DIR/slow exists it writes MARKERS_DIR/started and waits before committing, so a
test can kill the process mid-job. `probe.note` appends its argument to MARKERS_DIR/notes.

The inbox's real send task (`inbox.send`) runs as in any worker, with two holds for a test to
kill the process at: MARKERS_DIR/hold-before-send (before the provider is called) and
MARKERS_DIR/hold-after-send (after the send was recorded, before the job is finished); each
writes MARKERS_DIR/holding first.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from seamline.core.queue import Task
from seamline.inbox import delivery
from seamline.inbox import service as inbox_service
from seamline.loyalty import service as loyalty_service
from seamline.loyalty.schemas import AdjustmentCreate
from seamline.runtime import build

AWARD = Task("probe.award", queue="probe", in_transaction=True, max_attempts=5)
NOTE = Task("probe.note", queue="probe")


def main(markers: Path) -> None:
    runtime = build()

    def award(context, args) -> None:  # noqa: ANN001
        loyalty_service.adjust(context.session, customer_id=args["customer_id"], api_key=None, idempotency_key=None,
                               data=AdjustmentCreate(points=args["points"], staff="probe", comment="crash test"))
        if (markers / "slow").exists():
            (markers / "started").write_text(str(context.attempt))
            time.sleep(60)

    def note(_context, args) -> None:  # noqa: ANN001
        with (markers / "notes").open("a") as notes:
            notes.write(f"{args['text']}\n")

    def hold(name: str) -> None:
        if (markers / name).exists():
            (markers / "holding").write_text(name)
            time.sleep(60)

    def send(_context, args) -> None:  # noqa: ANN001
        hold("hold-before-send")
        delivery.send_message(runtime.database, runtime.settings, args)
        hold("hold-after-send")

    runtime.tasks.add(AWARD, award)
    runtime.tasks.add(NOTE, note)
    runtime.tasks.add(inbox_service.SEND, send)
    runtime.worker().run_until_signalled()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
