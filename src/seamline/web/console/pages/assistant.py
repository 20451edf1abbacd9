"""The Chat bot area: how the bot did over the last 7 or 30 days (conversations, containment,
why it handed over, what people asked, how fast it answered) and the messages it did not
understand, each one a form that adds it as an example of an intent (the "improve it" loop);
each intent's settings (human-only, the skill of its handover), its answers in Russian and
English and the business's example phrases; the conversation's own texts (asking who they are,
the code, handing over); and a box to try a text on the model.

Handlers hold no SQL: they call `assistant.editing` (which writes through `assistant.service`)
and render. The bot's intents and handover reasons are named by `label.bot_topic` and
`label.bot_reason` (web/console/labels.py). Admins and marketers (`assistant`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from seamline.assistant import editing, nlu
from seamline.assistant.intents import ANSWERS, INTENTS
from seamline.core.errors import AppError, NotFound
from seamline.core.time import utcnow
from seamline.web.console import labels
from seamline.web.console.actions import explain, read
from seamline.web.console.deps import RowId, Staff, database, permitted
from seamline.web.console.templating import render, translate

router = APIRouter(prefix="/console/assistant")

PERMISSION = "assistant"
PERIODS = (7, 30)
#: The business's phrases an intent's page lists (newest first).
PHRASES_SHOWN = 500
#: The shipped examples an intent's page shows per language (the rest are counted).
SHIPPED_SHOWN = 8
#: How long a text "try it" takes (as a customer's message: the bot keeps 1000 characters).
TRY_MAX = 1000
SKILL = re.compile(r"^[\w:.\-]{1,64}$")

T = TypeVar("T")


def _actor(staff: Staff) -> str:
    return f"staff:{staff.user.email}"[:200]


def _hx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _days(value: Any) -> int:
    try:
        days = int(str(value))
    except ValueError:
        return PERIODS[0]
    return days if days in PERIODS else PERIODS[0]


def _clean(value: Any, limit: int) -> str:
    """A form's text: no NUL, browsers' CRLF as LF, at most `limit` characters."""
    return str(value or "").replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")[:limit]


def case_names(request: Request) -> dict[str, str]:
    """What each answer key is, in the reader's words (an intent's own key is its answer)."""
    t = lambda message: translate(request, message)  # noqa: E731
    return {
        "order_status.none": t("No orders found"), "pickup.none": t("No order waits for pickup"),
        "extend_hold.already": t("The hold was extended already"), "extend_hold.none": t("No order to extend"),
        "stock.which": t("Asking which product"), "back_in_stock.available": t("In stock already"),
        "back_in_stock.notice": t("The message when it is back"), "points.none": t("No points account"),
        "returns.started": t("A return started"), "handover": t("Handing over to a person"),
        "not_understood": t("Did not understand"), "identify": t("Asking who they are"),
        "identify.other": t("Offering to confirm another phone or email"), "identify.sent": t("The code is sent"),
        "identify.wrong": t("A wrong code"), "identify.expired": t("The code expired"),
        "identify.failed": t("A code could not be sent"), "identify.done": t("Identity confirmed"),
        "action.cancelled": t("The customer said no"),
    }


def _case(request: Request, key: str) -> str:
    if key in INTENTS:
        return translate(request, "The answer")
    return case_names(request).get(key, key)


def _explain(request: Request, exc: AppError) -> str:
    """The bot's refusals in the reader's words; anything else as the console says it."""
    details: dict[str, Any] = exc.details or {}
    t = lambda message, **values: translate(request, message, **values)  # noqa: E731
    if exc.code == "invalid_template":
        line, problem = details.get("line") or "?", details.get("problem") or exc.message
        if details.get("lang") == "en":
            return t("The English text does not parse (line %(line)s): %(problem)s", line=line, problem=problem)
        return t("The Russian text does not parse (line %(line)s): %(problem)s", line=line, problem=problem)
    if exc.code == "template_too_long":
        return t("A text has at most %(max)s characters.", max=details.get("max", editing.MAX_TEMPLATE))
    if exc.code == "phrase_exists":
        return t("This phrase is an example of “%(intent)s” already: delete it there to move it.",
                 intent=_topic_name(request, details.get("intent")))
    if exc.code == "empty_phrase":
        return t("Write the phrase.")
    if exc.code == "phrase_not_found":
        return t("This phrase is not there any more.")
    if exc.code == "intent_not_found":
        return t("The bot has no such topic.")
    if exc.code == "answer_not_found":
        return t("The bot has no such text.")
    if exc.code == "topic_fixed":
        return t("This topic has no settings.")
    return explain(request, exc)


def _topic_name(request: Request, intent: Any) -> str:
    return labels.for_reader(request).bot_topic(intent)


def _attempt(request: Request, work: Callable[[Session], T]) -> tuple[T | None, str | None]:
    """(result, None) after a commit, or (None, a sentence) after a rollback."""
    try:
        return database(request).run_write(work), None
    except AppError as exc:
        return None, _explain(request, exc)


def _read(request: Request, work: Callable[[Session], T]) -> T:
    try:
        return read(request, work)
    except AppError as exc:
        exc.message = _explain(request, exc)
        raise


def _done(request: Request, done: str) -> tuple[str, str] | None:
    """The message of a redirect after a change (`?done=`)."""
    t = lambda message: translate(request, message)  # noqa: E731
    messages = {"saved": t("Saved."), "reset": t("Back to the default text."), "phrase_added": t("Added: the bot learns it at once."),
                "phrase_kept": t("This phrase is an example of this topic already."), "phrase_deleted": t("Deleted.")}
    return ("ok", messages[done]) if done in messages else None


# --- the overview ---------------------------------------------------------------------------------


def _overview(session: Session, days: int) -> dict[str, Any]:
    until = utcnow()
    figures = editing.stats(session, since=until - timedelta(days=days), until=until)
    reasons = sorted(figures["handover_reasons"].items(), key=lambda kv: (-kv[1], kv[0]))
    handed = sum(count for _code, count in reasons)
    asked = sorted(figures["intents"].items(), key=lambda kv: (-kv[1], kv[0]))
    turns = sum(count for _code, count in asked)
    return {"figures": figures, "reasons": [(code, count, count / handed if handed else None) for code, count in reasons],
            "asked": [(code, count, count / turns if turns else None) for code, count in asked],
            "unknown": editing.unknown_phrases(session, figures["not_understood"]), "intents": editing.intents(session),
            "custom_steps": sum(1 for a in editing.answers(session, editing.answer_keys(None))
                                for lang in editing.LANGUAGES if a["languages"][lang]["custom"] is not None)}


def _overview_page(request: Request, days: int, *, flash: tuple[str, str] | None = None, tried: dict[str, Any] | None = None,
                   status_code: int = 200) -> HTMLResponse:
    context = _read(request, lambda s: _overview(s, days))
    return render(request, "assistant/overview.html", section="assistant", tab="overview", days=days, periods=PERIODS,
                  all_intents=list(INTENTS),
                  enabled=request.app.state.settings.assistant_enabled, tried=tried, try_text=(tried or {}).get("text", ""),
                  flash=flash, status_code=status_code, **context)


@router.get("")
def overview(request: Request, days: str = "", done: str = "", staff: Staff = permitted(PERMISSION)) -> HTMLResponse:
    return _overview_page(request, _days(days), flash=_done(request, done))


@router.post("/try")
async def try_text(request: Request, staff: Staff = permitted(PERMISSION)) -> HTMLResponse:
    """What the model makes of a text now and what the bot would do (nothing is written)."""
    form = await request.form()
    text = " ".join(_clean(form.get("text"), TRY_MAX).split())
    settings = request.app.state.settings
    tried = {"text": text, "result": _read(request, lambda s: editing.classify(s, settings=settings, text=text)) if text else None}
    if _hx(request):
        return render(request, "assistant/_try.html", tried=tried)
    return _overview_page(request, _days(form.get("days")), tried=tried)


# --- phrases --------------------------------------------------------------------------------------


def _back(form: Any) -> tuple[str, int]:
    """Where a phrase's form came from: an intent's page, or the overview of a period."""
    return ("intent" if form.get("back") == "intent" else "overview"), _days(form.get("days"))


def _after_phrase(request: Request, form: Any, intent: str, *, done: str | None = None, problem: str | None = None,
                  status_code: int = 200) -> Response:
    back, days = _back(form)
    if problem is None:
        if back == "intent":
            return RedirectResponse(f"/console/assistant/intents/{intent}?done={done}#phrases", status_code=303)
        return RedirectResponse(f"/console/assistant?days={days}&done={done}#unknown", status_code=303)
    if back == "intent" and intent in INTENTS:
        return _intent_page(request, intent, flash=("error", problem), status_code=status_code)
    return _overview_page(request, days, flash=("error", problem), status_code=status_code)


@router.post("/phrases")
async def add_phrase(request: Request, staff: Staff = permitted(PERMISSION)) -> Response:
    form = await request.form()
    intent = _clean(form.get("intent"), 64)
    lang = str(form.get("lang") or "")
    text = _clean(form.get("text"), 500)
    if intent not in INTENTS:
        return _after_phrase(request, form, intent, problem=translate(request, "Choose the topic the phrase is about."),
                             status_code=422)
    found, problem = _attempt(request, lambda s: editing.add_phrase(s, intent=intent, text=text, lang=lang if lang in ("ru", "en") else None,
                                                                   by=_actor(staff))[1])
    if problem:
        return _after_phrase(request, form, intent, problem=problem, status_code=422)
    return _after_phrase(request, form, intent, done="phrase_added" if found else "phrase_kept")


@router.post("/phrases/{phrase_id}/delete")
async def delete_phrase(phrase_id: RowId, request: Request, staff: Staff = permitted(PERMISSION)) -> Response:
    form = await request.form()
    intent = _clean(form.get("intent"), 64)
    deleted, problem = _attempt(request, lambda s: editing.delete_phrase(s, phrase_id).intent)
    if problem:
        return _after_phrase(request, form, intent, problem=problem, status_code=404)
    return _after_phrase(request, form, deleted or intent, done="phrase_deleted")


# --- an intent ------------------------------------------------------------------------------------


def _intent_context(session: Session, intent: str) -> dict[str, Any]:
    found = editing.intents(session, intent)[0]
    shipped = nlu.shipped_phrases().get(intent, {})
    return {"intent": found, "phrases": editing.phrase_rows(session, intent=intent, limit=PHRASES_SHOWN),
            "shipped": {lang: list(shipped.get(lang, []))[:SHIPPED_SHOWN] for lang in editing.LANGUAGES},
            "skills": editing.known_skills(session), "all_intents": list(INTENTS)}


def _intent_page(request: Request, intent: str, *, flash: tuple[str, str] | None = None, status_code: int = 200,
                 problems: dict[str, str] | None = None, typed: dict[str, dict[str, str]] | None = None,
                 topic_problem: str | None = None, topic_typed: dict[str, Any] | None = None) -> HTMLResponse:
    context = _read(request, lambda s: _intent_context(s, intent))
    return render(request, "assistant/intent.html", section="assistant", tab="intent", flash=flash, status_code=status_code,
                  cases={a["key"]: _case(request, a["key"]) for a in context["intent"]["answers"]}, max_template=editing.MAX_TEMPLATE,
                  problems=problems or {}, typed=typed or {}, topic_problem=topic_problem, topic_typed=topic_typed, **context)


@router.get("/intents/{intent}")
def intent_page(intent: str, request: Request, done: str = "", staff: Staff = permitted(PERMISSION)) -> HTMLResponse:
    return _intent_page(request, intent[:64], flash=_done(request, done))


@router.post("/intents/{intent}/topic")
async def save_topic(intent: str, request: Request, staff: Staff = permitted(PERMISSION)) -> Response:
    form = await request.form()
    intent = intent[:64]
    human_only = bool(form.get("human_only"))
    skill = _clean(form.get("skill"), 200).strip()
    if skill and not SKILL.match(skill):
        return _intent_page(request, intent, status_code=422, topic_typed={"human_only": human_only, "skill": skill},
                            topic_problem=translate(request, "A skill is one word of at most 64 letters, digits and : . - (returns, lang:ru)."))
    _, problem = _attempt(request, lambda s: editing.set_topic(s, intent=intent, human_only=human_only, skill=skill or None))
    if problem:
        return _intent_page(request, intent, status_code=422, topic_problem=problem,
                            topic_typed={"human_only": human_only, "skill": skill})
    return RedirectResponse(f"/console/assistant/intents/{intent}?done=saved#settings", status_code=303)


# --- answers --------------------------------------------------------------------------------------


def _texts_context(session: Session) -> dict[str, Any]:
    return {"answers": editing.answers(session, editing.answer_keys(None))}


def _texts_page(request: Request, *, flash: tuple[str, str] | None = None, status_code: int = 200,
                problems: dict[str, str] | None = None, typed: dict[str, dict[str, str]] | None = None) -> HTMLResponse:
    context = _read(request, _texts_context)
    return render(request, "assistant/texts.html", section="assistant", tab="texts", flash=flash, status_code=status_code,
                  cases={a["key"]: _case(request, a["key"]) for a in context["answers"]}, max_template=editing.MAX_TEMPLATE,
                  problems=problems or {},
                  typed=typed or {}, **context)


@router.get("/texts")
def texts_page(request: Request, done: str = "", staff: Staff = permitted(PERMISSION)) -> HTMLResponse:
    """The conversation's own texts: asking who they are, the code, handing over, not understood."""
    return _texts_page(request, flash=_done(request, done))


@router.post("/answers/{key}")
async def save_answer(key: str, request: Request, staff: Staff = permitted(PERMISSION)) -> Response:
    """Both languages of one answer at once (a text equal to the default, or empty, is the
    default), or `reset` one language to the default; nothing is written when one does not parse."""
    form = await request.form()
    key = key[:64]
    if key not in ANSWERS:
        raise NotFound(translate(request, "The bot has no such text."), code="answer_not_found")
    intent = editing.intent_of(key)
    reset = str(form.get("reset") or "")
    values = {lang: _clean(form.get(lang), editing.MAX_TEMPLATE + 1) for lang in editing.LANGUAGES}

    def work(session: Session) -> str:
        if reset in editing.LANGUAGES:
            editing.reset_answer(session, key=key, lang=reset)
            return "reset"
        for lang in editing.LANGUAGES:
            if lang in form:
                editing.set_answer(session, key=key, lang=lang, template=values[lang], by=_actor(staff))
        return "saved"

    done, problem = _attempt(request, work)
    anchor = f"answer-{key.replace('.', '-')}"
    if problem:
        problems, typed = {key: problem}, {key: values}
        if intent is None:
            return _texts_page(request, status_code=422, problems=problems, typed=typed)
        return _intent_page(request, intent, status_code=422, problems=problems, typed=typed)
    target = f"/console/assistant/intents/{intent}" if intent else "/console/assistant/texts"
    return RedirectResponse(f"{target}?done={done}#{anchor}", status_code=303)
