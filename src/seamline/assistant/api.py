"""HTTP routes of the bot's admin surface (`admin` scope: what the bot says to every customer,
which topics it leaves to people, and the customers' own words it did not understand).

Writes are safe to repeat: PUT sets, DELETE of an answer goes back to the default, POST of a
phrase an intent already has answers that phrase again (200) instead of adding it twice.
The business logic is in `editing.py`; docs/assistant.md says what each setting does."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from seamline.assistant import editing
from seamline.assistant.schemas import (
    AnswerList,
    AnswerPut,
    AnswerRead,
    ClassifyIn,
    ClassifyRead,
    IntentList,
    IntentName,
    IntentRead,
    Lang,
    PhraseCreate,
    PhrasePage,
    PhraseRead,
    StatsRead,
    TopicPut,
)
from seamline.core.deps import AdminKey, AppSettings, ReadSession, WriteSession
from seamline.core.errors import Unprocessable
from seamline.core.openapi import errors, replayed
from seamline.core.pagination import CursorQuery, before, page
from seamline.core.schemas import DateTime, PathId
from seamline.core.time import utcnow

router = APIRouter(prefix="/v1/assistant", tags=["assistant"], responses=errors(401, 403, 422))

IntentPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z_]+$", description="An intent's name")]
KeyPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z_]+(\.[a-z_]+)*$",
                              description="An answer's key (`order_status`, `order_status.none`, `identify`)")]
LangPath = Annotated[Lang, Path(description="ru or en")]
#: The longest period the figures are counted over.
MAX_PERIOD_DAYS = 366


def _by(key: Any) -> str:
    return f"api:{key.name}"


@router.get("/intents", response_model=IntentList)
def list_intents(session: ReadSession, _: AdminKey) -> dict[str, Any]:
    """Every intent: its names, whether it reads a person's data, human-only (in effect) and the
    handover's skill, its example phrases (shipped, the business's) and its answers."""
    return {"items": editing.intents(session)}


@router.get("/intents/{intent}", response_model=IntentRead, responses=errors(404, notes={404: "`intent_not_found`"}))
def get_intent(intent: IntentPath, session: ReadSession, _: AdminKey) -> dict[str, Any]:
    return editing.intents(session, intent)[0]


@router.put("/topics/{intent}", response_model=IntentRead, responses=errors(404, 422, notes={
    404: "`intent_not_found`", 422: "`topic_fixed`: `human` and `out_of_scope` have no settings"}))
def put_topic(intent: IntentPath, body: TopicPut, session: WriteSession, _: AdminKey) -> dict[str, Any]:
    """Whether the bot leaves this topic to people (it hands the conversation over at once) and
    the skill routing then requires. `human` and `out_of_scope` have no settings (422
    `topic_fixed`): the bot always hands a request for a person over and never answers what is
    out of scope, before it looks at any topic's settings."""
    return editing.set_topic(session, intent=intent, human_only=body.human_only, skill=body.skill)


@router.get("/answers", response_model=AnswerList)
def list_answers(session: ReadSession, _: AdminKey) -> dict[str, Any]:
    """Every text of the bot: the intents' answers and the conversation's steps (asking who they
    are, the code, handing over, not understood), each with its default and the business's
    template per language and the variables it is given."""
    return {"items": editing.answers(session)}


@router.put("/answers/{key}/{lang}", response_model=AnswerRead, responses=errors(404, 422, notes={
    404: "`answer_not_found`", 422: "`invalid_template` (with `line` and `problem`)"}))
def put_answer(key: KeyPath, lang: LangPath, body: AnswerPut, session: WriteSession, api_key: AdminKey) -> dict[str, Any]:
    """The business's text for this answer in this language: a Jinja2 template over its
    variables, refused when it does not parse or uses an unknown filter (422 `invalid_template`).
    The default's own text is the default (nothing is kept)."""
    return editing.set_answer(session, key=key, lang=lang, template=body.template, by=_by(api_key))


@router.delete("/answers/{key}/{lang}", response_model=AnswerRead, responses=errors(404, notes={404: "`answer_not_found`"}))
def reset_answer(key: KeyPath, lang: LangPath, session: WriteSession, _: AdminKey) -> dict[str, Any]:
    """Back to the default text (nothing happens when it is the default already)."""
    return editing.reset_answer(session, key=key, lang=lang)


@router.get("/phrases", response_model=PhrasePage)
def list_phrases(session: ReadSession, _: AdminKey, intent: Annotated[IntentName | None, Query()] = None,
                 lang: Annotated[Lang | None, Query()] = None, limit: Annotated[int, Query(ge=1, le=200)] = 50,
                 cursor: CursorQuery = None) -> dict[str, Any]:
    """The example phrases the business added, newest first (the shipped ones are counted in
    each intent)."""
    rows = editing.phrase_rows(session, intent=intent, lang=lang, before_id=before(cursor), limit=limit + 1)
    items, next_cursor = page(rows, limit)
    return {"items": items, "next_cursor": next_cursor}


@router.post("/phrases", status_code=201, response_model=PhraseRead, responses={**replayed(PhraseRead), **errors(409, 422, notes={
    409: "`phrase_exists`: the same words are an example of another intent (`details.intent`)", 422: "`empty_phrase`"})})
def add_phrase(body: PhraseCreate, session: WriteSession, api_key: AdminKey, response: Response) -> Any:
    """An example phrase of an intent; the model learns it at once. The same words (case and
    spacing aside) under the same intent answer the existing phrase (200); under another, 409."""
    row, created = editing.add_phrase(session, intent=body.intent, text=body.text, lang=body.lang, by=_by(api_key))
    if not created:
        response.status_code = 200
    return row


@router.delete("/phrases/{phrase_id}", status_code=204, response_class=Response,
               responses=errors(404, notes={404: "`phrase_not_found`"}))
def delete_phrase(phrase_id: PathId, session: WriteSession, _: AdminKey) -> Response:
    editing.delete_phrase(session, phrase_id)
    return Response(status_code=204)


@router.post("/classify", response_model=ClassifyRead)
def classify(body: ClassifyIn, session: ReadSession, settings: AppSettings, _: AdminKey) -> dict[str, Any]:
    """What the model makes of a text now (intent, confidence, language, the next best) and what
    the bot would do with it as a first message. Nothing is written."""
    if not body.text.strip():
        raise Unprocessable("Write a text to classify", code="empty_text")
    return editing.classify(session, settings=settings, text=body.text)


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


@router.get("/stats", response_model=StatsRead, responses=errors(422, notes={422: "`invalid_period`"}))
def stats(session: ReadSession, _: AdminKey,
          since: Annotated[DateTime | None, Query(description="From (ISO 8601; no zone: UTC); default: 7 days before `until`")] = None,
          until: Annotated[DateTime | None, Query(description="Before (exclusive; ISO 8601; no zone: UTC); default: now")] = None,
          ) -> dict[str, Any]:
    """The bot's figures over conversations it started in the period: how many, containment
    (ended by the bot among those ended), handover reasons, messages by intent, the time to
    answer (p50, p99) and the newest messages it did not understand (at most a year)."""
    end = _aware(until) or utcnow()
    start = _aware(since) or end - timedelta(days=7)
    if start >= end or end - start > timedelta(days=MAX_PERIOD_DAYS):
        raise Unprocessable(f"`since` must be before `until`, at most {MAX_PERIOD_DAYS} days apart", code="invalid_period",
                            details={"since": start.isoformat(), "until": end.isoformat(), "max_days": MAX_PERIOD_DAYS})
    return {"since": start, "until": end, **editing.stats(session, since=start, until=end)}
