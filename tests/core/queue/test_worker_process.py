"""Real worker processes on each database, killed as an operating system kills them.

SIGKILL in the middle of a job that gives points (inside the job's transaction) loses nothing
and gives nothing twice: the kill rolls the award back, the job's lease runs out, the next worker
runs it once. SIGKILL around a message's send neither loses it nor sends it twice. A job delayed before the restart runs after it, at its time. SIGTERM stops a
worker gracefully. `seamline worker` itself runs the periodic tasks the settings ask for."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select

from seamline.app import create_app
from seamline.core.config import Settings
from seamline.core.queue.models import Job, JobSchedule
from seamline.core.time import utcnow
from seamline.loyalty.models import LoyaltyEntry
from tests.core.queue.probe_worker import AWARD, NOTE
from tests.channels.fakes import FakeJsonApi
from tests.core.queue.test_queue import all_jobs, wait_for
from tests.inbox.test_outbound import SECRET, TOKEN, bot_api_answer, send, telegram_customer
from tests.loyalty.conftest import balance, customer_id

ROOT = Path(__file__).resolve().parents[3]
QUIET = {"SEAMLINE_COMMERCE_EXPIRE_INTERVAL_SECONDS": "0", "SEAMLINE_COMMERCE_REFUND_RETRY_SECONDS": "0",
         "SEAMLINE_LOYALTY_JOB_INTERVAL_SECONDS": "0", "SEAMLINE_INBOX_JOB_INTERVAL_SECONDS": "0",
         "SEAMLINE_INBOX_IMAP_POLL_SECONDS": "0"}


def environment(settings: Settings, **more: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("SEAMLINE_")}
    env |= {"SEAMLINE_DATABASE_URL": settings.database_url, "SEAMLINE_LOG_LEVEL": "WARNING", "SEAMLINE_LOG_JSON": "true",
            "SEAMLINE_JOB_LEASE_SECONDS": "2", "SEAMLINE_WORKER_POLL_SECONDS": "0.05", **QUIET, **more}
    if settings.secret_key.get_secret_value():
        env["SEAMLINE_SECRET_KEY"] = settings.secret_key.get_secret_value()
    return env


def probe(settings: Settings, markers: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.core.queue.probe_worker", str(markers)], cwd=ROOT,
                            env=environment(settings, **env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    return output.decode()


def test_sigkill_mid_job_gives_the_points_once_and_a_delayed_job_runs_after_the_restart(
        client, admin_headers, database, settings, tmp_path):
    cid = customer_id(client, admin_headers)
    (tmp_path / "slow").touch()
    with database.write() as session:
        AWARD.enqueue(session, {"customer_id": cid, "points": 100})
    first = probe(settings, tmp_path)
    try:
        wait_for(lambda: (tmp_path / "started").exists(), timeout=60)
    finally:
        first.kill()  # SIGKILL: no handler runs, the transaction dies with the connection
        first.wait(timeout=30)
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(LoyaltyEntry)) == 0  # not even the account is left

    (tmp_path / "slow").unlink()
    due_at = utcnow() + timedelta(seconds=4)
    with database.write() as session:  # enqueued while no worker runs
        NOTE.enqueue(session, {"text": "after the restart"}, run_at=due_at)
    second = probe(settings, tmp_path)
    try:
        wait_for(lambda: (tmp_path / "notes").exists(), timeout=60)
        ran_at = utcnow()
        wait_for(lambda: all_jobs(database) == [], timeout=30)
    finally:
        stop(second)
    assert due_at <= ran_at < due_at + timedelta(seconds=3)
    assert (tmp_path / "notes").read_text() == "after the restart\n"
    assert balance(client, admin_headers, cid) == (100, 0)
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(LoyaltyEntry)) == 1


def test_sigkill_mid_send_sends_each_message_once(database, settings, write_headers, tmp_path):
    """Killed before the provider was called: the message goes after the restart. Killed after
    the send was recorded but before its job was finished: the repeated job sends nothing."""
    bot = FakeJsonApi(bot_api_answer)
    telegram = {"SEAMLINE_INBOX_TELEGRAM_BOT_TOKEN": TOKEN, "SEAMLINE_INBOX_TELEGRAM_WEBHOOK_SECRET": SECRET,
                "SEAMLINE_INBOX_TELEGRAM_API_BASE": bot.url}
    app_settings = settings.model_copy(update={
        "inbox_telegram_bot_token": SecretStr(TOKEN), "inbox_telegram_webhook_secret": SecretStr(SECRET),
        "inbox_telegram_api_base": bot.url})
    try:
        with TestClient(create_app(app_settings, database=database)) as client:
            anna = telegram_customer(client, write_headers)
            first = send(client, write_headers, anna, "Заказ 1042 собран")
            phases = (("hold-before-send", None, [], ["Заказ 1042 собран"]),
                      ("hold-after-send", "Заказ 1043 собран", ["Заказ 1042 собран", "Заказ 1043 собран"],
                       ["Заказ 1042 собран", "Заказ 1043 собран"]))
            for hold, text, when_killed, after_restart in phases:
                if text:
                    send(client, write_headers, anna, text)
                (tmp_path / hold).touch()
                worker = probe(settings, tmp_path, **telegram)
                try:
                    wait_for(lambda: (tmp_path / "holding").exists(), timeout=60)
                finally:
                    worker.kill()
                    worker.wait(timeout=30)
                (tmp_path / hold).unlink()
                (tmp_path / "holding").unlink()
                assert [c[1]["text"] for c in bot.calls] == when_killed
                worker = probe(settings, tmp_path, **telegram)
                try:
                    wait_for(lambda: all_jobs(database) == [], timeout=30)
                finally:
                    stop(worker)
                assert [c[1]["text"] for c in bot.calls] == after_restart  # each message once
            assert [c[1]["text"] for c in bot.calls] == ["Заказ 1042 собран", "Заказ 1043 собран"]
            status = client.get(f"/v1/inbox/outbound/{first['id']}", headers=write_headers).json()
            assert status["delivery_status"] == "sent" and status["attempts"] == 1
    finally:
        bot.close()


def test_sigterm_lets_the_running_job_finish(client, admin_headers, database, settings, tmp_path):
    cid = customer_id(client, admin_headers)
    (tmp_path / "slow").write_text("")
    with database.write() as session:
        AWARD.enqueue(session, {"customer_id": cid, "points": 5})
    worker = probe(settings, tmp_path)
    wait_for(lambda: (tmp_path / "started").exists(), timeout=60)
    (tmp_path / "slow").unlink()
    worker.send_signal(signal.SIGTERM)  # the job sleeps 60 s: stop waits for it up to its timeout
    try:
        worker.wait(timeout=5)
        stopped_early = True
    except subprocess.TimeoutExpired:
        stopped_early = False
    worker.kill()
    worker.wait(timeout=30)
    assert not stopped_early  # it did not walk away from the running job
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(LoyaltyEntry)) == 0


def test_seamline_worker_runs_the_periodic_tasks_once_per_period(database, settings):
    command = [str(Path(sys.executable).with_name("seamline")), "worker"]
    if not Path(command[0]).exists():
        command = [sys.executable, "-m", "seamline.cli", "worker"]
    env = environment(settings, SEAMLINE_LOYALTY_JOB_INTERVAL_SECONDS="1")
    workers = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
               for _ in range(2)]
    try:
        def ran() -> bool:
            with database.read() as session:
                schedule = session.get(JobSchedule, "loyalty")
                return schedule is not None and schedule.last_succeeded_at is not None
        wait_for(ran, timeout=60)
        started = time.monotonic()
        time.sleep(3)
    finally:
        outputs = [stop(worker) for worker in workers]
    assert all("Traceback" not in output for output in outputs), outputs
    with database.read() as session:
        schedule = session.get(JobSchedule, "loyalty")
        assert schedule.last_error is None and schedule.next_run_at <= utcnow() + timedelta(seconds=1)
        assert session.scalar(select(func.count()).select_from(Job)) == 0
    assert time.monotonic() - started >= 3
