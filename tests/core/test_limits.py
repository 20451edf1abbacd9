"""Limits on what one client may send, through HTTP: public endpoints answer 429 with
Retry-After past their budget per IP and per key (`SEAMLINE_RATE_LIMITS`), and every route
refuses a body over its limit with a 413, whether its length is declared or it is chunked."""

from __future__ import annotations

import base64
import select
import socket
from urllib.parse import urlsplit

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from seamline.app import create_app
from seamline.core.auth.schemas import Scope
from seamline.core.limits import TokenBuckets
from seamline.events import service as events_service
from tests.browser import live_server
from tests.conftest import make_key
from tests.core.test_auth import assert_error


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def track(n: int) -> dict:
    return {"userId": "anna-1", "event": "Viewed", "messageId": f"m-{n}"}


def new_source(database, name: str = "Website") -> str:
    with database.write() as session:
        return events_service.create_source(session, name=name, channel="web")[1]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def make_client(database, settings_for):
    """A client of an app with these rate limits (and a clock the test moves), from `address`."""
    opened = []

    def build(rate_limits=None, address: str = "203.0.113.7", app=None, **overrides):
        if app is None:
            app = create_app(settings_for(database.url, rate_limits=rate_limits or {}, **overrides), database=database)
            app.state.clock = Clock()
            app.state.rate_limiter.buckets = TokenBuckets(clock=app.state.clock)
            client = TestClient(app, client=(address, 50000)).__enter__()
            opened.append(client)
            return client
        return TestClient(app, client=(address, 50000))  # another address of a running app

    yield build
    for client in opened:
        client.__exit__(None, None, None)


def assert_limited(response, per: str) -> int:
    error = assert_error(response, 429, "rate_limited")
    retry_after = int(response.headers["Retry-After"])
    assert retry_after >= 1 and error["details"]["retry_after_seconds"] == retry_after
    assert error["details"]["per"] == per
    return retry_after


# --- rates ----------------------------------------------------------------------------------------


def test_collection_per_ip_then_retry_after_is_honoured(make_client, database, admin_headers):
    client = make_client({"collection": {"ip": 3}})
    key = new_source(database)
    for n in range(3):
        assert client.post("/v1/track", json=track(n), headers=basic(key)).status_code == 200
    refused = client.post("/v1/track", json=track(3), headers={**basic(key), "Origin": "https://shop.example"})
    retry_after = assert_limited(refused, "ip")
    assert retry_after == 20  # 3 a minute: one every 20 s
    assert refused.headers["access-control-allow-origin"] == "*"  # a browser can read the answer
    # Another address has its own budget; this one waits as told.
    other = make_client(app=client.app, address="198.51.100.9")
    assert other.post("/v1/batch", json={"batch": [{**track(10), "type": "track"}]}, headers=basic(key)).status_code == 200
    client.app.state.clock.now += retry_after - 1
    assert_limited(client.post("/v1/track", json=track(4), headers=basic(key)), "ip")
    client.app.state.clock.now += 1
    assert client.post("/v1/track", json=track(5), headers=basic(key)).status_code == 200

    stored = client.get("/v1/events", headers=admin_headers).json()["items"]
    assert sorted(e["message_id"] for e in stored) == ["m-0", "m-1", "m-10", "m-2", "m-5"]  # refused ones: nothing


def test_collection_per_key_whichever_way_the_key_comes(make_client, database):
    client = make_client({"collection": {"key": 2}})
    key, other_key = new_source(database), new_source(database, "App")
    assert client.post("/v1/track", json=track(1), headers=basic(key)).status_code == 200
    assert client.post("/v1/page", json={"anonymousId": "a-1", "writeKey": key}).status_code == 200  # key in the body
    assert_limited(client.post("/v1/identify", json={"userId": "u-1"}, headers={"Authorization": f"Bearer {key}"}), "key")
    assert client.post("/v1/track", json=track(2), headers=basic(other_key)).status_code == 200  # another source
    # An unknown key is refused as before, without spending anyone's budget.
    assert client.post("/v1/track", json=track(3), headers=basic("sl_nope_nope")).status_code == 401


def test_web_chat_sessions_per_ip_and_per_write_key(make_client, database):
    key = new_source(database)
    client = make_client({"webchat": {"ip": 2, "key": 1000}})
    for n in range(2):
        assert client.post("/v1/webchat/sessions", json={"writeKey": key, "anonymousId": f"a-{n}"}).status_code == 201
    assert_limited(client.post("/v1/webchat/sessions", json={"writeKey": key, "anonymousId": "a-2"}), "ip")

    client = make_client({"webchat": {"ip": 1000, "key": 2}})
    for n in range(2):
        assert client.post("/v1/webchat/sessions", json={"writeKey": key, "anonymousId": f"b-{n}"}).status_code == 201
    assert_limited(client.post("/v1/webchat/sessions", json={"writeKey": key, "anonymousId": "b-2"}), "key")
    # The budget is the group's: reading is not limited, other routes not at all.
    assert client.get("/webchat/widget.js").status_code == 200
    assert client.get("/healthz").status_code == 200


def test_call_back_requests_per_ip_and_per_key(make_client, database):
    key = new_source(database)
    form = {"writeKey": key, "name": "Анна", "comment": "Про возврат"}
    client = make_client({"callback": {"ip": 2, "key": 1000}})
    for n in range(2):
        response = client.post("/v1/channels/telephony/callback-requests", json={**form, "phone": f"+7916123456{n}"})
        assert response.status_code == 201, response.text
    assert_limited(client.post("/v1/channels/telephony/callback-requests", json={**form, "phone": "+79161234569"}), "ip")

    client = make_client({"callback": {"ip": 1000, "key": 1}}, address="198.51.100.10")
    assert client.post("/v1/channels/telephony/callback-requests", json={**form, "phone": "+79161234562"}).status_code == 201
    assert_limited(client.post("/v1/channels/telephony/callback-requests", json={**form, "phone": "+79161234563"}), "key")


def test_login_codes_per_api_key_and_per_ip(make_client, database):
    shop = {"Authorization": f"Bearer {make_key(database, Scope.write, name='shop')}"}
    other_shop = {"Authorization": f"Bearer {make_key(database, Scope.write, name='shop 2')}"}
    client = make_client({"login_codes": {"ip": 1000, "key": 3}}, login_codes_reveal=True)
    phone = {"type": "phone", "value": "+79161234567"}
    code = client.post("/v1/auth/login-codes", json={"identifier": phone}, headers=shop).json()["code"]
    wrong = "000000" if code != "000000" else "111111"
    assert client.post("/v1/auth/login-codes/verify", json={"identifier": phone, "code": wrong}, headers=shop).status_code == 422
    assert client.post("/v1/auth/login-codes/verify", json={"identifier": phone, "code": code}, headers=shop).status_code == 200
    assert_limited(client.post("/v1/auth/login-codes/verify", json={"identifier": phone, "code": code}, headers=shop), "key")
    assert client.post("/v1/auth/login-codes/verify", json={"identifier": phone, "code": code}, headers=other_shop).status_code == 200
    # The same key elsewhere (not a public endpoint) is not limited.
    assert all(client.get("/v1/customers", headers=shop).status_code == 200 for _ in range(3))

    client = make_client({"login_codes": {"ip": 1}}, login_codes_reveal=True)
    assert client.post("/v1/auth/login-codes", json={"identifier": phone}, headers=other_shop).status_code == 202
    assert_limited(client.post("/v1/auth/login-codes", json={"identifier": phone}, headers=other_shop), "ip")


def test_defaults_are_generous_and_zero_turns_a_limit_off(make_client, database, settings):
    assert settings.rate_limits["collection"].ip >= 6000 and settings.rate_limits["webchat"].ip >= 600
    client = make_client({"collection": {"ip": 0, "key": 0}})
    key = new_source(database)
    for n in range(50):
        assert client.post("/v1/track", json=track(n), headers=basic(key)).status_code == 200


def test_idle_buckets_are_forgotten_and_their_number_is_bounded():
    clock = Clock()
    buckets = TokenBuckets(max_buckets=100, clock=clock)
    for n in range(100):
        assert buckets.take(("collection", "ip", f"10.0.0.{n}"), 60) == 0
    assert buckets.take(("collection", "ip", "10.0.1.1"), 60) == 0  # the 101st: the oldest half goes
    assert len(buckets) <= 51
    clock.now += 61  # everyone is full again: swept at the next new key
    buckets.take(("collection", "ip", "10.0.2.1"), 60)
    assert len(buckets) == 1
    for _ in range(59):
        buckets.take("k", 60)
    assert buckets.take("k", 60) == 0 and buckets.take("k", 60) == pytest.approx(1.0)


# --- body sizes -----------------------------------------------------------------------------------


def chunks(total: int, size: int = 64 * 1024):
    for start in range(0, total, size):
        yield b" " * min(size, total - start)


def test_a_10_mb_body_is_refused_declared_or_chunked(make_client, database):
    client = make_client()
    body = b'{"writeKey": "x", "anonymousId": "' + b"a" * (10 * 1024 * 1024) + b'"}'
    error = assert_error(client.post("/v1/webchat/sessions", content=body, headers={"Content-Type": "application/json"}),
                         413, "payload_too_large")
    assert error["details"]["max_bytes"] == 1024 * 1024
    chunked = client.post("/v1/webchat/sessions", content=chunks(10 * 1024 * 1024), headers={"Content-Type": "application/json"})
    assert_error(chunked, 413, "payload_too_large")
    # Under the limit, chunked or not, the route answers as usual.
    key = new_source(database)
    small = orjson.dumps({"writeKey": key, "anonymousId": "a-1"})
    assert client.post("/v1/webchat/sessions", content=iter([small[:10], small[10:]]),
                       headers={"Content-Type": "application/json"}).status_code == 201
    # Every JSON route, with or without a key.
    assert_error(client.post("/v1/customers", content=chunks(2 * 1024 * 1024)), 413, "payload_too_large")


def test_the_limit_is_a_setting_and_routes_with_files_have_their_own(make_client, database, admin_headers):
    client = make_client(http_max_body_bytes=4096, inbox_attachment_max_bytes=200_000, inbox_email_max_bytes=100_000)
    key = new_source(database)
    assert_error(client.post("/v1/customers", json={"traits": {"x": "y" * 5000}}, headers=admin_headers), 413, "payload_too_large")
    # An attachment over the default but within its own limit goes through; over it: the route's code.
    upload = client.post("/v1/inbox/attachments", files={"file": ("a.bin", b"x" * 150_000)}, headers=admin_headers)
    assert upload.status_code == 201, upload.text
    too_big = client.post("/v1/inbox/attachments", content=chunks(400_000),
                          headers={**admin_headers, "Content-Type": "multipart/form-data; boundary=x"})
    assert_error(too_big, 413, "attachment_too_large")
    for path in ("/v1/channels/email/messages", "/v1/inbox/channels/email/messages"):  # the second: its old name
        big_email = client.post(path, content=chunks(200_000), headers={**admin_headers, "Content-Type": "message/rfc822"})
        assert_error(big_email, 413, "email_too_large")
        email = client.post(path, content=b"From: a@example.com\r\n\r\n" + b"x" * 50_000,
                            headers={**admin_headers, "Content-Type": "message/rfc822"})
        assert email.status_code == 202, email.text
    # Collection keeps answering a batch over its own limit (500 KB) with its 400; far over: 413.
    batch = {"batch": [{**track(n), "type": "track", "properties": {"blob": "x" * 20_000}} for n in range(30)]}
    assert_error(client.post("/v1/batch", json=batch, headers=basic(key)), 400, "batch_too_large")
    assert_error(client.post("/v1/batch", content=chunks(1_100_000), headers=basic(key)), 413, "payload_too_large")


def test_a_real_server_stops_reading_a_chunked_body_at_the_limit(database, settings_for):
    """Over a socket: the answer comes while the client is still sending, and the server closes."""
    app = create_app(settings_for(database.url, http_max_body_bytes=64 * 1024), database=database)
    with live_server(app) as url:
        address = urlsplit(url)
        with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
            sock.sendall(b"POST /v1/webchat/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
            chunk, sent = b" " * 16384, 0
            for _ in range(640):  # 10 MB if the server kept reading; stop once it answers
                if select.select([sock], [], [], 0)[0]:
                    break
                try:
                    sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                except (BrokenPipeError, ConnectionResetError):
                    break
                sent += len(chunk)
            answer = b""
            try:
                while data := sock.recv(65536):
                    answer += data
            except ConnectionResetError:
                pass
        assert sent < 5 * 1024 * 1024
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413"), answer[:300]
        assert b"connection: close" in head.lower()
        assert orjson.loads(body)["error"]["code"] == "payload_too_large"


def test_the_domains_own_limits_also_say_when_to_retry(make_client, database):
    """Per phone number (call-back form) and per identifier (login codes): 429 with Retry-After too."""
    key = new_source(database)
    client = make_client(inbox_callback_max_per_phone_per_day=1, login_codes_reveal=True)
    form = {"writeKey": key, "phone": "+79161234567", "requestId": "form-1"}
    assert client.post("/v1/channels/telephony/callback-requests", json=form).status_code == 201
    # The first one is answered; the number may ask again, but only once a day.
    with database.write() as session:
        session.execute(text("UPDATE telephony_call SET status = 'completed'"))
    refused = client.post("/v1/channels/telephony/callback-requests", json={**form, "requestId": "form-2"})
    error = assert_error(refused, 429, "too_many_callback_requests")
    assert 86_000 < int(refused.headers["Retry-After"]) <= 86_401 and error["details"]["retry_after_seconds"] > 86_000

    shop = {"Authorization": f"Bearer {make_key(database, Scope.write, name='shop')}"}
    phone = {"type": "phone", "value": "+79161234567"}
    for _ in range(5):
        assert client.post("/v1/auth/login-codes", json={"identifier": phone}, headers=shop).status_code == 202
    refused = client.post("/v1/auth/login-codes", json={"identifier": phone}, headers=shop)
    error = assert_error(refused, 429, "too_many_codes")
    assert int(refused.headers["Retry-After"]) == error["details"]["retry_after_seconds"] > 3000
