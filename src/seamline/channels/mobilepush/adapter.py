"""The mobile push adapter: notifications to customers' app installs through Firebase Cloud
Messaging's HTTP v1 API (Android directly, iOS through FCM's APNs bridge).

- Addresses: the customer's live device tokens (`mobilepush_device`, across merged profiles),
  read again when the message is sent (`prepare`).
- Auth: an OAuth2 access token for the scope `firebase.messaging`, obtained with google-auth
  from the Firebase service account (`inbox_mobilepush_fcm_credentials_file` or
  `..._credentials`): a JWT signed with the account's key, exchanged at its `token_uri`; kept
  and refreshed before it expires, one per process.
- Send: one `POST {base}/v1/projects/{project}/messages:send` per token: `notification`
  {title, body}, `data` (string values: `url`, `icon`, `tag`, `seamline_message_id`), and the
  device platform's block (`android`: ttl, priority, tag; `apns`: apns-expiration,
  apns-priority, apns-collapse-id).
- Errors as FCM documents them (`error.details[]` of type `FcmError`, `errorCode`):
  UNREGISTERED (404), INVALID_ARGUMENT naming the token, and SENDER_ID_MISMATCH revoke the
  token; QUOTA_EXCEEDED (429), UNAVAILABLE (503), INTERNAL (500) and other 5xx are temporary
  (Retry-After honoured); 401 UNAUTHENTICATED refreshes the access token and retries; other
  errors (THIRD_PARTY_AUTH_ERROR: the APNs key in Firebase is wrong, an invalid payload) fail
  that device. As with web push, the message is sent when one device took it.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import httpx
from google.auth import exceptions as google_exceptions
from google.auth.transport.requests import Request as GoogleRequest
from google.oauth2 import service_account
from sqlalchemy.orm import Session

from seamline.channels import push
from seamline.channels.mobilepush.models import MobilePushDevice
from seamline.core import http
from seamline.core.config import Settings
from seamline.core.errors import Unprocessable
from seamline.inbox.adapters import ChannelAdapter, OutboundMessage, SendError, SendResult

CHANNEL = "mobilepush"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
#: A notification's text is cut to this many characters (FCM takes 4 KB per message).
MAX_BODY = 1000
#: FCM errorCodes that mean the token will never work again.
GONE = {"UNREGISTERED", "SENDER_ID_MISMATCH"}

_lock = threading.Lock()
_credentials: dict[tuple[str, str, str], service_account.Credentials] = {}


class CredentialsError(ValueError):
    pass


@lru_cache(maxsize=4)
def _parse(text: str) -> dict[str, Any]:
    try:
        info = json.loads(text)
    except ValueError as exc:
        raise CredentialsError("the FCM service account is not JSON") from exc
    missing = [k for k in ("client_email", "private_key", "token_uri") if not isinstance(info, dict) or not info.get(k)]
    if missing:
        raise CredentialsError(f"the FCM service account lacks {', '.join(missing)}")
    return info


@lru_cache(maxsize=4)
def _read(path: str, _mtime_ns: int) -> str:
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def account(settings: Settings) -> dict[str, Any] | None:
    """The service account's JSON (the secret, else the file); None when neither is set."""
    text = settings.inbox_mobilepush_fcm_credentials.get_secret_value().strip()
    path = settings.inbox_mobilepush_fcm_credentials_file
    if not text and path:
        try:
            text = _read(path, os.stat(path).st_mtime_ns)
        except OSError as exc:
            raise CredentialsError(f"cannot read inbox_mobilepush_fcm_credentials_file: {exc.strerror}") from exc
    return _parse(text) if text else None


def project_id(settings: Settings, info: dict[str, Any]) -> str:
    project = settings.inbox_mobilepush_fcm_project_id or info.get("project_id") or ""
    if not project:
        raise CredentialsError("no FCM project: set inbox_mobilepush_fcm_project_id")
    return project


def access_token(info: dict[str, Any], *, renew: bool = False) -> str:
    """An OAuth2 access token of the service account, refreshed when it is (nearly) expired."""
    key = (info["client_email"], info.get("private_key_id", ""), info["token_uri"])
    with _lock:
        credentials = _credentials.get(key)
        if credentials is None:
            try:
                credentials = service_account.Credentials.from_service_account_info(info, scopes=[SCOPE])
            except (ValueError, KeyError) as exc:
                raise CredentialsError(f"the FCM service account's key cannot be read ({type(exc).__name__})") from exc
            _credentials[key] = credentials
        if renew or not credentials.valid:
            request = GoogleRequest()  # a requests session of its own, closed once the token is in
            try:
                credentials.refresh(request)
            finally:
                request.session.close()
        return credentials.token


def message_body(message: OutboundMessage, token: str, platform: str, settings: Settings) -> dict[str, Any]:
    """The `messages:send` request for one device token."""
    note = push.notification(message, settings)
    body = note["body"] or ""
    if len(body) > MAX_BODY:
        body = body[: MAX_BODY - 1].rstrip() + "…"
    tag = note["tag"]
    data = {k: str(v) for k, v in (("url", note["url"]), ("icon", note["icon"]), ("tag", tag)) if v}
    data["seamline_message_id"] = str(message.message_id)
    high = (message.data.get("urgency") or settings.inbox_push_urgency) == "high"
    ttl = settings.inbox_mobilepush_ttl_seconds
    fcm: dict[str, Any] = {"token": token, "notification": {"title": note["title"], "body": body}, "data": data}
    if platform == "ios":
        fcm["apns"] = {"headers": {"apns-priority": "10" if high else "5", "apns-expiration": str(int(time.time()) + ttl),
                                   **({"apns-collapse-id": tag} if tag else {})}}
    else:
        fcm["android"] = {"ttl": f"{ttl}s", "priority": "high" if high else "normal",
                          **({"collapse_key": tag, "notification": {"tag": tag}} if tag else {})}
    return {"message": fcm}


@dataclass
class _Outcome:
    name: str | None = None
    code: str = ""
    gone: bool = False
    temporary: bool = False
    retry_after: float | None = None
    error: str = ""


class MobilePushAdapter(ChannelAdapter):
    name = CHANNEL
    consent_channel = "push"

    def configured(self, settings: Settings) -> bool:
        return bool(settings.inbox_mobilepush_fcm_credentials.get_secret_value().strip()
                    or settings.inbox_mobilepush_fcm_credentials_file)

    def address(self, session: Session, *, customer_id: int, thread: dict[str, Any]) -> dict[str, Any]:
        rows = push.live(session, MobilePushDevice, customer_id)
        if not rows:
            raise Unprocessable("The customer has no app registered for notifications", code="channel_unreachable",
                                details={"channel": CHANNEL})
        return {"customer_id": customer_id, "devices": [row.id for row in rows]}

    def prepare(self, session: Session, message: OutboundMessage) -> OutboundMessage:
        customer_id = message.address.get("customer_id")
        rows = push.live(session, MobilePushDevice, customer_id) if customer_id else []
        message.address = {**message.address, "devices": [
            {"id": row.id, "token": row.token, "platform": row.platform} for row in rows]}
        return message

    def settle(self, session: Session, message: OutboundMessage, meta: dict[str, Any]) -> None:
        gone = (meta.get(CHANNEL) or {}).get("revoked") or {}
        push.revoke(session, MobilePushDevice, {int(k): v for k, v in gone.items()})

    def send(self, message: OutboundMessage, *, settings: Settings) -> SendResult:
        devices = [d for d in message.address.get("devices") or [] if isinstance(d, dict)]
        try:
            info = account(settings)
            if info is None:
                raise SendError("Mobile push is not configured (inbox_mobilepush_fcm_credentials_file)", temporary=True)
            url = f"{settings.inbox_mobilepush_fcm_base_url.rstrip('/')}/v1/projects/{project_id(settings, info)}/messages:send"
        except CredentialsError as exc:
            raise SendError(f"Mobile push: {exc}", temporary=True) from exc
        if not devices:
            raise SendError("The customer has no app registered for notifications any more", temporary=False)
        outcomes = {d["id"]: _send_one(url, info, message_body(message, d["token"], d["platform"], settings))
                    for d in devices}
        delivered = [o.name for o in outcomes.values() if o.name]
        revoked = {str(i): o.error for i, o in outcomes.items() if o.gone}
        failed = {str(i): o.error for i, o in outcomes.items() if not o.name and not o.gone}
        meta = {CHANNEL: {"devices": len(outcomes), "delivered": len(delivered),
                          **({"revoked": revoked} if revoked else {}), **({"failed": failed} if failed else {})}}
        if delivered:
            return SendResult(provider_message_id=delivered[0][:255], status="sent", meta=meta)
        temporary = [o for o in outcomes.values() if o.temporary]
        summary = "; ".join(o.error for o in outcomes.values())[:1000]
        if temporary:
            waits = [o.retry_after for o in temporary if o.retry_after is not None]
            raise SendError(f"FCM: {summary}", temporary=True, retry_after=max(waits) if waits else None, meta=meta)
        raise SendError(f"FCM: no device took it ({summary})", temporary=False, meta=meta)


def _send_one(url: str, info: dict[str, Any], body: dict[str, Any]) -> _Outcome:
    outcome = _Outcome()
    for renew in (False, True):  # a rejected access token is renewed once
        try:
            token = access_token(info, renew=renew)
        except google_exceptions.GoogleAuthError as exc:
            return _Outcome(temporary=True, error=f"no access token from {info['token_uri']}: {str(exc)[:200]}")
        except CredentialsError as exc:
            return _Outcome(temporary=True, error=str(exc))
        try:
            response = http.client().post(url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=15)
        except httpx.HTTPError as exc:
            return _Outcome(temporary=True, error=f"FCM unreachable: {type(exc).__name__}")
        outcome = _outcome(response)
        if response.status_code != 401 or outcome.code == "THIRD_PARTY_AUTH_ERROR":
            return outcome
    return outcome


def _outcome(response: httpx.Response) -> _Outcome:
    """What FCM's answer means for the token (https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode)."""
    status = response.status_code
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if 200 <= status < 300:
        return _Outcome(name=str(answer.get("name") or "sent"))
    error = answer.get("error") if isinstance(answer, dict) and isinstance(answer.get("error"), dict) else {}
    details = [d for d in error.get("details") or [] if isinstance(d, dict)]
    code = next((d.get("errorCode") for d in details if d.get("@type") == FCM_ERROR and d.get("errorCode")), None)
    code = code or error.get("status") or str(status)
    text = f"{code} ({status}): {error.get('message') or response.text[:200]}"
    fields = {v.get("field") for d in details if d.get("@type") == BAD_REQUEST for v in d.get("fieldViolations") or []}
    bad_token = code == "INVALID_ARGUMENT" and ("message.token" in fields or "registration token" in str(error.get("message", "")).lower())
    if code in GONE or status == 404 or bad_token:
        return _Outcome(code=code, gone=True, error=text)
    if code == "THIRD_PARTY_AUTH_ERROR":
        return _Outcome(code=code, error=text)
    if status in (401, 403, 429) or status >= 500:  # a token to renew, a permission to grant, a quota, an outage
        return _Outcome(code=code, temporary=True, retry_after=push.retry_after(response.headers.get("retry-after")), error=text)
    return _Outcome(code=code, error=text)


ADAPTER = MobilePushAdapter()
