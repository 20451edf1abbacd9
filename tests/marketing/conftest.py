"""What marketing's tests share: an app where email reaches people (no quiet hours, no global
cap unless a test asks), a marketer's key, the commerce tests' small shop, a server-side event
source."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from seamline.app import create_app
from seamline.core.auth.schemas import Scope
from seamline.events import service as events_service
from tests.commerce.conftest import shop as commerce_shop  # noqa: F401 - a fixture, used by `shop`
from tests.conftest import make_key


@pytest.fixture
def settings(database, settings_for):
    return settings_for(database.url, inbox_smtp_host="127.0.0.1", inbox_smtp_port=2525, inbox_email_address="shop@example.com",
                        marketing_quiet_hours="", marketing_cap_messages=0)


@pytest.fixture
def client(settings, database):
    with TestClient(create_app(settings, database=database)) as test_client:
        yield test_client


@pytest.fixture
def marketer(database) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key(database, Scope.marketing, name='marketer')}"}


@pytest.fixture
def marketing_headers(marketer) -> dict[str, str]:
    return marketer


@pytest.fixture
def shop(commerce_shop):  # noqa: F811
    return commerce_shop


@pytest.fixture
def server_key(database) -> str:
    with database.write() as session:
        _source, key = events_service.create_source(session, name="Backend", channel="app", server_side=True)
    return key
