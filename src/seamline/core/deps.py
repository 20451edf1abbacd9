"""FastAPI dependencies shared by every router: sessions and API-key authentication."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from seamline.core.auth import service as auth_service
from seamline.core.auth.models import ApiKey
from seamline.core.auth.schemas import Scope
from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.core.errors import Unauthorized
from seamline.core.limits import charge_key
from seamline.core.trust_cache import TrustCache

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer sl_...`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="`X-API-Key: sl_...`")


def get_database(request: Request) -> Database:
    return request.app.state.database


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def _write_session(request: Request) -> Iterator[Session]:
    with get_database(request).write() as session:
        yield session


def _read_session(request: Request) -> Iterator[Session]:
    with get_database(request).read() as session:
        yield session


#: A write transaction committed when the endpoint returns, before the response is sent; any
#: error rolls the whole request back, so nothing is half-written.
WriteSession = Annotated[Session, Depends(_write_session, scope="function")]
ReadSession = Annotated[Session, Depends(_read_session, scope="function")]
async def _app_settings(request: Request) -> Settings:
    return request.app.state.settings


# Lookups of app state are `async def`: FastAPI runs a plain `def` dependency in the thread
# pool, a hop that costs more than the lookup.
AppSettings = Annotated[Settings, Depends(_app_settings)]


#: How long a checked API key is trusted by a process without asking the database again
#: (`core.trust_cache`): revoking a key takes effect everywhere within this time.
API_KEY_CACHE_SECONDS = 5.0


def require(scope: Scope):
    """Dependency factory: the request must carry an API key granting `scope`."""

    async def _check(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
        header: Annotated[str | None, Security(_header)],
    ) -> ApiKey:
        raw = header or (bearer.credentials if bearer else None)
        if not raw:
            raise Unauthorized("An API key is required (Authorization: Bearer or X-API-Key)", code="missing_api_key")
        cache: TrustCache[ApiKey] = request.app.state.api_keys
        key = cache.get(raw)
        if key is None:
            key = await run_in_threadpool(_authenticate, get_database(request), raw)  # a bad key raises: never kept
            cache.put(raw, key)
        auth_service.check_scope(key, scope)
        charge_key(request, f"api_key:{key.id}")  # public endpoints' per-key budget (core/limits.py); else a no-op
        return key

    return _check


def _authenticate(database: Database, raw: str) -> ApiKey:
    with database.read() as session:
        return auth_service.authenticate(session, raw)


AdminKey = Annotated[ApiKey, Depends(require(Scope.admin))]
WriteKey = Annotated[ApiKey, Depends(require(Scope.write))]
ReadKey = Annotated[ApiKey, Depends(require(Scope.read))]
MarketingKey = Annotated[ApiKey, Depends(require(Scope.marketing))]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=200, description="Retries with the same key do the work once"),
]
