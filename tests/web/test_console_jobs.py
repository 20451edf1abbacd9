"""The console's background jobs tab (admins): each queue's depth, the dead letters with their
error and a retry, the periodic tasks' last runs; in Russian for a Russian-speaking admin."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import update

from seamline.core.queue import Periodic, Task, service
from seamline.core.queue.models import QUEUED, Job
from seamline.core.time import utcnow
from tests.web.test_console_settings import post

SEND = Task("inbox.send_reply", queue="send", max_attempts=1)


def dead_job(database) -> int:  # noqa: ANN001
    job_id = database.run_write(lambda s: SEND.enqueue(s, {"message_id": 7}))
    [claimed] = database.run_write(lambda s: service.claim(s, "send", worker="w", limit=1, lease=timedelta(seconds=30)))
    database.run_write(lambda s: service.fail(s, claimed, worker="w", error="SMTPRecipientsRefused: <a@example.com>"))
    return job_id


def test_an_admin_sees_the_queues_and_retries_a_dead_job(client, database, staff_client):
    job_id = dead_job(database)
    database.run_write(lambda s: SEND.enqueue(s, {"message_id": 8}, delay=timedelta(hours=1)))
    database.run_write(lambda s: service.start_period(s, Periodic("order-expiry", 60, lambda: None)))
    csrf = staff_client("admin")
    page = client.get("/console/settings?tab=jobs")
    assert page.status_code == 200 and 'data-test="settings-jobs"' in page.text
    send = re.search(r'data-test="queue-send">(.*?)</tr>', page.text, re.DOTALL).group(1)
    assert [int(n) for n in re.findall(r"<td>(\d+)</td>", send)] == [1, 0, 0]  # waiting, due, running
    assert f'data-test="dead-{job_id}"' in page.text and "SMTPRecipientsRefused" in page.text
    assert 'data-test="schedule-order-expiry"' in page.text

    retried = post(client, f"/console/settings/jobs/{job_id}/retry", csrf)
    assert retried.status_code == 200 and "back in its queue" in retried.text
    assert f'data-test="dead-{job_id}"' not in retried.text
    with database.read() as session:
        job = session.get(Job, job_id)
        assert (job.state, job.attempts) == (QUEUED, 0)
    again = post(client, f"/console/settings/jobs/{job_id}/retry", csrf)
    assert again.status_code == 422 and "retried it already" in again.text


def test_only_admins_see_the_jobs(client, database, staff_client):
    dead_job(database)
    staff_client("agent")
    assert client.get("/console/settings?tab=jobs").status_code == 403


def test_the_jobs_tab_speaks_russian(client, database, staff_client):
    dead_job(database)
    database.run_write(lambda s: s.execute(update(Job).values(finished_at=utcnow())))
    staff_client("admin", locale="ru")
    page = client.get("/console/settings?tab=jobs")
    assert "Фоновые задачи" in page.text and "Невыполненные задачи" in page.text and "Повторить" in page.text
