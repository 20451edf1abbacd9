"""The page at / (what `seamline demo` prints last) and the API docs, which work offline."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from seamline.app import create_app
from tests.web.conftest import add_staff

LINKS = ('href="/console/"', 'href="/shop/"', 'href="/docs"')


def test_landing_in_english_and_russian_with_no_credentials(client, database):
    add_staff(database, email="admin@demo.seamline", role="admin")  # a demo's account, but this is no demo
    english = client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert english.status_code == 200 and english.headers["content-type"].startswith("text/html")
    assert '<html lang="en">' in english.text
    assert "Staff console" in english.text and "Web shop" in english.text and "API docs" in english.text
    assert all(link in english.text for link in LINKS)
    for secret in ("@demo.seamline", "admin-demo", "agent-demo", 'data-test="demo-logins"', 'data-test="demo-tag"'):
        assert secret not in english.text, secret
    assert 'data-test="no-logins"' in english.text

    russian = client.get("/?lang=ru", headers={"Accept-Language": "en"})
    assert '<html lang="ru">' in russian.text and "Консоль сотрудников" in russian.text and "Staff console" not in russian.text
    assert all(link in russian.text for link in LINKS)
    assert russian.cookies.get("sl_lang") == "ru"  # the console's sign-in page speaks it too
    assert '<html lang="ru">' in client.get("/", headers={"Accept-Language": "en"}).text
    assert '<html lang="en">' in client.get("/?lang=en").text
    assert '<html lang="en">' in client.get("/?lang=xx", headers={"Accept-Language": "en"}).text  # unknown: ignored


def test_the_app_is_on_the_other_name_of_this_machine(client):
    """As the demo prints it: http://localhost:8000/app/ beside http://127.0.0.1:8000/."""
    assert 'href="http://localhost:8000/app/"' in client.get("/", headers={"Host": "127.0.0.1:8000"}).text
    assert 'href="http://127.0.0.1:8000/app/"' in client.get("/", headers={"Host": "localhost:8000"}).text
    assert 'href="/app/"' in client.get("/", headers={"Host": "crm.example.com"}).text


@pytest.fixture
def demo_client(settings, database):
    with TestClient(create_app(settings.model_copy(update={"demo": True}), database=database)) as client:
        yield client


def test_a_demo_lists_its_console_logins(demo_client, database):
    # the demo's accounts this database has (a deleted one is not offered)
    add_staff(database, email="admin@demo.seamline", role="admin")
    add_staff(database, email="marketer@demo.seamline", role="marketer", locale="ru")
    page = demo_client.get("/?lang=en").text
    assert 'data-test="demo-tag"' in page and 'data-test="demo-logins"' in page and 'data-test="no-logins"' not in page
    rows = re.findall(r'<tr data-test="demo-login">(.*?)</tr>', page, re.S)
    assert len(rows) == 2
    assert "admin@demo.seamline" in rows[0] and "admin-demo" in rows[0] and "admin" in rows[0]
    assert "marketer@demo.seamline" in rows[1] and "marketer-demo" in rows[1]
    assert "agent@demo.seamline" not in page
    russian = demo_client.get("/?lang=ru").text
    assert "Входы в консоль демо" in russian and "администратор" in russian and "admin-demo" in russian


def _local_urls(html: str) -> list[str]:
    urls = re.findall(r'(?:src|href)="([^"]*)"', html) + re.findall(r"url: '([^']*)'", html)
    assert urls
    assert all(url.startswith("/") and not url.startswith("//") for url in urls), urls
    assert "http://" not in html and "https://" not in html  # no CDN, no fonts service, no validator
    return urls


@pytest.mark.parametrize("page, kinds", [("/docs", {"javascript", "css", "png"}), ("/redoc", {"javascript", "png"})])
def test_api_docs_are_served_with_no_cdn(client, database, page, kinds):
    if not database.is_sqlite:
        pytest.skip("the same pages on every backend")
    html = client.get(page)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    seen = set()
    for url in _local_urls(html.text):
        answer = client.get(url)
        assert answer.status_code == 200, url
        if url == "/openapi.json":
            assert answer.json()["paths"]
            continue
        kind = next(k for k in ("javascript", "css", "png") if k in answer.headers["content-type"])
        assert len(answer.content) > (100_000 if kind != "png" else 100), url
        seen.add(kind)
    assert seen == kinds
    if page == "/docs":
        assert '"validatorUrl": null' in html.text  # no badge fetched from the public validator
        assert client.get("/docs/oauth2-redirect").status_code == 200
