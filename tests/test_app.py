"""The application's assembly: the order of its routers changes no answer."""

from __future__ import annotations

import itertools

import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute

from seamline.app import DOCUMENT_TAGS, ROUTERS, create_app
from seamline.core.config import Settings


def _templates(router) -> list[tuple[str, frozenset[str], tuple[str, ...]]]:  # noqa: ANN001
    """(path, methods, segments) of each route; a WebSocket route's "method" is WEBSOCKET. A
    router nested in a router would escape the check, so it fails here instead."""
    templates = []
    for route in router.routes:
        assert isinstance(route, APIRoute | APIWebSocketRoute), f"{route!r}: teach this test its paths"
        methods = frozenset(route.methods or ()) if isinstance(route, APIRoute) else frozenset({"WEBSOCKET"})
        templates.append((route.path, methods, tuple(route.path.strip("/").split("/"))))
    return templates


def _overlap(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Whether one request path can match both templates: same number of segments, and at each
    segment the same literal or a parameter on either side (a `{name:path}` parameter, which spans
    segments, is treated as matching anything after it)."""
    for left, right in itertools.zip_longest(a, b):
        if left is None or right is None:
            return False
        if left.endswith(":path}") or right.endswith(":path}"):
            return True
        if left != right and not left.startswith("{") and not right.startswith("{"):
            return False
    return True


def test_no_request_can_match_routes_of_two_routers():
    """`ROUTERS` is ordered for speed (hot paths first); FastAPI takes the first route that matches,
    so the order would change answers if two routers could match one request."""
    clashes = []
    for first, second in itertools.combinations(ROUTERS, 2):
        for path_a, methods_a, parts_a in _templates(first):
            for path_b, methods_b, parts_b in _templates(second):
                if methods_a & methods_b and _overlap(parts_a, parts_b):
                    clashes.append((sorted(methods_a & methods_b), path_a, path_b))
    assert clashes == []


def test_the_overlap_check_sees_a_clash():
    assert _overlap(("v1", "orders", "{order_id}"), ("v1", "orders", "current"))
    assert not _overlap(("v1", "orders", "{order_id}"), ("v1", "carts", "{code}"))
    assert not _overlap(("v1", "orders"), ("v1", "orders", "{order_id}"))


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return create_app(Settings(database_url=f"sqlite:///{tmp_path_factory.mktemp('app')}/app.db"))


def test_every_router_is_included_once(app):
    included = [route.original_router for route in app.router.routes if hasattr(route, "original_router")]
    assert len(set(map(id, ROUTERS))) == len(ROUTERS)
    assert all(any(router is seen for seen in included) for router in ROUTERS)


def test_the_reference_lists_every_tag_in_reading_order(app):
    document = app.openapi()
    used = {tag for operations in document["paths"].values() for operation in operations.values()
            for tag in operation.get("tags", [])}
    assert [tag["name"] for tag in document["tags"]] == list(DOCUMENT_TAGS)
    assert used == set(DOCUMENT_TAGS)
