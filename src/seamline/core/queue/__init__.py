"""One job queue for every background job, on the database Seamline already has.

A job is a row in `jobs`, written in the same transaction as the change that causes it (a
rollback enqueues nothing; a commit loses nothing). Workers (`seamline worker`, or a worker
inside `seamline serve` on the embedded default) claim due jobs, run them and delete them;
a failure is retried with backoff until the task's attempts run out, then kept as a dead
letter that staff can retry. Periodic tasks are enqueued once per period for the whole cluster.
See docs/architecture.md ("Background jobs") for the design and why no library runs it.
"""

from seamline.core.queue.registry import Defer, JobContext, Limiter, Periodic, Priority, Retry, Task, TaskRegistry
from seamline.core.queue.service import enqueue
from seamline.core.queue.worker import Worker, run_due

__all__ = ["Defer", "JobContext", "Limiter", "Periodic", "Priority", "Retry", "Task", "TaskRegistry", "Worker", "enqueue", "run_due"]
