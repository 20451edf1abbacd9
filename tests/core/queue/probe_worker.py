"""A worker process for the queue's crash tests: the app's runtime plus two probe tasks.

    python -m tests.core.queue.probe_worker MARKERS_DIR

`probe.award` gives a customer points through the loyalty ledger inside the job's transaction
(no idempotency key of its own: only the queue stands between a crash and a second award).
When MARKERS_DIR/slow exists it writes MARKERS_DIR/started and waits before committing, so a
test can kill the process mid-job. `probe.note` appends its argument to MARKERS_DIR/notes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from seamline.core.queue import Task
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

    runtime.tasks.add(AWARD, award)
    runtime.tasks.add(NOTE, note)
    runtime.worker().run_until_signalled()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
