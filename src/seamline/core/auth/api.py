from __future__ import annotations

from fastapi import APIRouter, Request

from seamline.core.auth import service
from seamline.core.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from seamline.core.deps import AdminKey, ReadSession, WriteSession
from seamline.core.schemas import path_id

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])

KeyId = path_id()


@router.post("", response_model=ApiKeyCreated, status_code=201)
def create_api_key(body: ApiKeyCreate, session: WriteSession, caller: AdminKey) -> ApiKeyCreated:
    key, secret = service.create_api_key(session, name=body.name, scopes=body.scopes, created_by=caller)
    return ApiKeyCreated(**ApiKeyRead.model_validate(key).model_dump(), key=secret)


@router.get("", response_model=list[ApiKeyRead])
def list_api_keys(session: ReadSession, _: AdminKey) -> list[ApiKeyRead]:
    return [ApiKeyRead.model_validate(k) for k in service.list_api_keys(session)]


@router.delete("/{key_id}", response_model=ApiKeyRead)
def revoke_api_key(request: Request, session: WriteSession, _: AdminKey, key_id: int = KeyId) -> ApiKeyRead:
    """Revoke a key: this process refuses it at once, the others within
    `API_KEY_CACHE_SECONDS` (5 s)."""
    revoked = ApiKeyRead.model_validate(service.revoke_api_key(session, key_id=key_id))
    request.app.state.api_keys.clear()
    return revoked
