"""The Marketing area: segments (a rule in words, live size while it is edited, members),
campaigns (a message or A/B variants of it to a segment: a form that makes a draft, schedule /
cancel, results per variant and the holdout, worded as what happened: scheduled is not sent),
journeys (made from a ready-made one, each step in words, who is where and why they left, start
/ pause / archive), templates (RU and EN, a preview with a real customer, a test send that says
honestly what happened) and each journey's results (messages per send step, conversions and
revenue by A/B arm against the holdout); and a person's channels as the next-best-channel model
ranks them, with the evidence behind it.

Handlers hold no SQL: they call marketing's services (segments/service.py, campaigns/service.py,
journeys/service.py and results.py, journeys/library.py, messages/service.py, optichannel/ranking.py) and render; marketing's JSON becomes
sentences in web/console/marketing_words.py. Marketers and admins only (`marketing`).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from seamline.commerce import promotions as commerce_promotions
from seamline.core.errors import AppError
from seamline.core.time import utcnow
from seamline.customers import service as customers_service
from seamline.inbox import outbound
from seamline.inbox.adapters import ADAPTERS
from seamline.marketing.campaigns import service as campaign_service
from seamline.marketing.campaigns.schemas import CampaignCreate
from seamline.marketing.journeys import library, results
from seamline.marketing.journeys import service as journeys
from seamline.marketing.journeys.schemas import JourneyFromTemplate
from seamline.marketing.messages import service as messages
from seamline.marketing.messages.render import LOCALES as TEMPLATE_LOCALES
from seamline.marketing.messages.render import PARTS as TEMPLATE_PARTS
from seamline.marketing.optichannel import ranking
from seamline.marketing.reactor import ADVANCE, CAMPAIGNS
from seamline.marketing.segments import service as segments
from seamline.marketing.segments.schemas import SegmentCreate, SegmentUpdate
from seamline.web import i18n
from seamline.web.console import labels, people
from seamline.web.console.actions import attempt, explain, form_problem, read
from seamline.web.console.deps import RowId, Staff, database, permitted
from seamline.web.console.marketing_words import Words
from seamline.web.console.templating import form_key, render, translate
from seamline.web.reports import charts

router = APIRouter(prefix="/console/marketing")

PERMISSION = "marketing"
MEMBERS_PAGE = 50
PEOPLE_PAGE = 50
SEARCH_LIMIT = 8
ESTIMATE_SAMPLE = 5
#: What a new segment's rule starts as (a marketer edits it; the estimate shows its size at once).
STARTER_RULE = {"type": "and", "rules": [{"type": "consent", "channel": "email"},
                                         {"type": "orders", "within_days": 90, "count": {"op": "gte", "value": 2}}]}
#: The text of a rule as the form shows it.
RULE_INDENT = 2


def _actor(staff: Staff) -> str:
    return f"staff:{staff.user.email}"[:200]


def _words(request: Request, session: Session | None = None) -> Words:
    """The reader's sentences; with a session, segments and templates named in rules and steps."""
    settings = request.app.state.settings
    staff = getattr(request.state, "staff", None)
    locale = staff.user.locale if staff else i18n.DEFAULT_LOCALE
    fmt = i18n.Formats(locale, settings.console_timezone, settings.default_region)
    names: dict[str, Any] = {}
    if session is not None:
        names["segments"] = {s.id: s.name for s in segments.list_segments(session, include_archived=True)}
        names["templates"] = {t.id: t.name for t in messages.list_templates(session)}
    return Words(labels.for_reader(request), fmt, currency=settings.commerce_currency, **names)


def _read(request: Request, work: Any) -> Any:
    """`actions.read`, a refusal (a segment, a journey, a template that is not there) said in the
    reader's words on the console's error page."""
    try:
        return read(request, work)
    except AppError as exc:
        exc.message = explain(request, exc)
        raise


def _hx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _after_id(value: str | None) -> int | None:
    try:
        found = int(value or "")
    except ValueError:
        return None
    return found if 0 < found < 2**62 else None


@router.get("")
def marketing_home(request: Request, staff: Staff = permitted(PERMISSION)) -> Response:
    return RedirectResponse("/console/marketing/segments", status_code=303)


# --- segments ---------------------------------------------------------------------------------


def _segment_rows(session: Session, archived: bool) -> list[Any]:
    return segments.list_segments(session, include_archived=archived)


@router.get("/segments")
def segment_list(request: Request, archived: str = "", staff: Staff = permitted(PERMISSION)) -> HTMLResponse:
    show_archived = bool(archived)
    rows = _read(request, lambda s: _segment_rows(s, show_archived))
    template = "marketing/_segment_rows.html" if _hx(request) else "marketing/segments.html"
    return render(request, template, section="marketing", tab="segments", rows=rows, archived=show_archived)


def _rule_text(rule: Any) -> str:
    return json.dumps(rule, ensure_ascii=False, indent=RULE_INDENT)


def _parse_rule(words: Words, text: str) -> tuple[Any | None, str | None]:
    """(the rule, None) or (None, what is wrong with it, in the reader's words)."""
    if not text.strip():
        return None, words.t("Write a rule (JSON) to see how many people it holds for.")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, words.t("The rule is not valid JSON: line %(line)s, column %(column)s.", line=exc.lineno, column=exc.colno)
    try:
        return segments.RULE.validate_python(data), None
    except ValidationError as exc:
        return None, words.invalid(exc)


@router.post("/segments/estimate")
async def segment_estimate(request: Request, staff: Staff = permitted(PERMISSION)) -> HTMLResponse:
    """How many people the rule being edited holds for now (nothing is written): the form's
    live estimate, asked for a moment after the person stops typing."""
    form = await request.form()
    words = _read(request, lambda s: _words(request, s))
    rule, problem = _parse_rule(words, str(form.get("rules") or ""))
    found: dict[str, Any] | None = None
    who: dict[int, Any] = {}
    if rule is not None:
        found, problem = attempt(request, lambda s: segments.estimate(s, rule=rule, sample=ESTIMATE_SAMPLE))
        if found is not None:
            who = _read(request, lambda s: people.briefs(s, found["sample_ids"]))
    return render(request, "marketing/_estimate.html", found=found, problem=problem, who=who)


def _segment_form(request: Request, *, segment: Any | None, values: dict[str, str], problem: str | None = None,
                  status_code: int = 200) -> HTMLResponse:
    return render(request, "marketing/segment_form.html", section="marketing", tab="segments", segment=segment, values=values,
                  problem=problem, key=values.get("key") or form_key(), status_code=status_code)


@router.get("/segments/new")
def segment_new(request: Request, staff: Staff = permitted(PERMISSION)) -> HTMLResponse:
    return _segment_form(request, segment=None, values={"name": "", "description": "", "rules": _rule_text(STARTER_RULE)})


async def _segment_values(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: str(form.get(k) or "").replace("\x00", "") for k in ("name", "description", "rules", "key")}


@router.post("/segments/new")
async def segment_create(request: Request, staff: Staff = permitted(PERMISSION)) -> Response:
    values = await _segment_values(request)
    words = _read(request, lambda s: _words(request, s))
    rule, problem = _parse_rule(words, values["rules"])
    if not values["name"].strip():
        problem = words.t("Give the segment a name.")
    if problem:
        return _segment_form(request, segment=None, values=values, problem=problem, status_code=422)

    def work(session: Session) -> int:
        data = SegmentCreate(name=values["name"].strip(), description=values["description"].strip(), rules=rule)
        segment, new = segments.create_segment(session, data=data, created_by=_actor(staff),
                                               idempotency_key=f"console:{values['key']}" if values["key"] else None)
        if new:
            segments.evaluate(session, segment_id=segment.id, cause="created")
        return segment.id

    segment_id, error = attempt(request, work)
    if error:
        return _segment_form(request, segment=None, values=values, problem=error, status_code=422)
    return RedirectResponse(f"/console/marketing/segments/{segment_id}?done=saved", status_code=303)


def _segment_context(session: Session, request: Request, segment_id: int, after: int | None) -> dict[str, Any]:
    segment = segments.get_segment(session, segment_id)
    words = _words(request, session)
    members = segments.members_page(session, segment_id=segment_id, limit=MEMBERS_PAGE + 1, after_id=after)
    more = len(members) > MEMBERS_PAGE
    members = members[:MEMBERS_PAGE]
    try:
        rule = words.rule(segment.rules)
    except ValidationError:  # a rule saved by an older version of the language: shown as JSON only
        rule = None
    return {"segment": segment, "rule": rule, "rule_json": _rule_text(segment.rules), "members": members,
            "who": people.briefs(session, [m.profile_id for m in members]), "after": after,
            "next_after": members[-1].profile_id if more else None}


def _done(request: Request, done: str) -> tuple[str, str] | None:
    """The message of a redirect after a save (`?done=`)."""
    if done == "saved":
        return "ok", translate(request, "Saved.")
    if done == "created":
        return "ok", translate(request, "Created as a draft: check it, then start it.")
    return None


@router.get("/segments/{segment_id}")
def segment_page(segment_id: RowId, request: Request, after: str = "", done: str = "",
                 staff: Staff = permitted(PERMISSION)) -> HTMLResponse:
    context = _read(request, lambda s: _segment_context(s, request, segment_id, _after_id(after)))
    template = "marketing/_members.html" if _hx(request) and request.headers.get("hx-target") == "members" else "marketing/segment.html"
    return render(request, template, section="marketing", tab="segments", flash=_done(request, done), **context)


@router.get("/segments/{segment_id}/edit")
def segment_edit(segment_id: RowId, request: Request, staff: Staff = permitted(PERMISSION)) -> HTMLResponse:
    segment = _read(request, lambda s: segments.get_segment(s, segment_id))
    return _segment_form(request, segment=segment, values={"name": segment.name, "description": segment.description,
                                                           "rules": _rule_text(segment.rules)})


@router.post("/segments/{segment_id}/edit")
async def segment_update(segment_id: RowId, request: Request, staff: Staff = permitted(PERMISSION)) -> Response:
    values = await _segment_values(request)
    segment = _read(request, lambda s: segments.get_segment(s, segment_id))
    words = _read(request, lambda s: _words(request, s))
    rule, problem = _parse_rule(words, values["rules"])
    if not values["name"].strip():
        problem = words.t("Give the segment a name.")
    if problem:
        return _segment_form(request, segment=segment, values=values, problem=problem, status_code=422)

    def work(session: Session) -> None:
        data = SegmentUpdate(name=values["name"].strip(), description=values["description"].strip(), rules=rule)
        edited = segments.update_segment(session, segment_id=segment_id, data=data)
        if edited.evaluated_version != edited.version:
            segments.evaluate(session, segment_id=segment_id, cause="edited")

    _, error = attempt(request, work)
    if error:
        return _segment_form(request, segment=segment, values=values, problem=error, status_code=422)
    return RedirectResponse(f"/console/marketing/segments/{segment_id}?done=saved", status_code=303)


def _segment_answer(request: Request, segment_id: int, flash: tuple[str, str], status_code: int = 200) -> Response:
    """After an action: the segment page's body (HTMX) with the message, or the page itself."""
    if not _hx(request):
        if flash[0] == "ok":
            return RedirectResponse(f"/console/marketing/segments/{segment_id}", status_code=303)
    context = _read(request, lambda s: _segment_context(s, request, segment_id, None))
    template = "marketing/_segment.html" if _hx(request) else "marketing/segment.html"
    return render(request, template, section="marketing", tab="segments", flash=flash, status_code=status_code, **context)


@router.post("/segments/{segment_id}/evaluate")
def segment_evaluate(segment_id: RowId, request: Request, staff: Staff = permitted(PERMISSION)) -> Response:
    outcome, error = attempt(request, lambda s: segments.evaluate(s, segment_id=segment_id, cause="refresh"))
    if error:
        return _segment_answer(request, segment_id, ("error", error), 422)
    if outcome.entered < 0 or outcome.exited < 0:  # a driver that did not count the rows (PostgreSQL, nobody entering)
        return _segment_answer(request, segment_id, ("ok", translate(request, "Evaluated: %(members)s people in %(ms)s ms.",
                                                                     members=outcome.members, ms=outcome.milliseconds)))
    return _segment_answer(request, segment_id, ("ok", translate(
        request, "Evaluated: %(members)s people (%(entered)s entered, %(exited)s left) in %(ms)s ms.",
        members=outcome.members, entered=outcome.entered, exited=outcome.exited, ms=outcome.milliseconds)))


@router.post("/segments/{segment_id}/archive")
def segment_archive(segment_id: RowId, request: Request, staff: Staff = permitted(PERMISSION)) -> Response:
    def work(session: Session) -> None:
        if segments.get_segment(session, segment_id).status != "archived":
            segments.archive_segment(session, segment_id=segment_id)

    _, error = attempt(request, work)
    if error:
        return _segment_answer(request, segment_id, ("error", error), 422)
    return _segment_answer(request, segment_id, ("ok", translate(request, "The segment is archived: it is no longer evaluated.")))


# --- journeys ---------------------------------------------------------------------------------


@router.get("/journeys")
def journey_list(request: Request, archived: str = "", staff: Staff = permitted(PERMISSION)) -> HTMLResponse:
    def work(session: Session) -> dict[str, Any]:
        rows = journeys.list_journeys(session, include_archived=bool(archived))
        return {"rows": rows, "summaries": results.summaries(session, [j.id for j in rows]),
                "currency": request.app.state.settings.commerce_currency}

    return render(request, "marketing/journeys.html", section="marketing", tab="journeys", archived=bool(archived),
                  **_read(request, work))


def _send_channels(request: Request) -> list[dict[str, Any]]:
    """Channels a marketing message can be sent on (not the live ones), and whether each is set up."""
    settings = request.app.state.settings
    return [{"code": name, "configured": adapter.configured(settings)} for name, adapter in sorted(ADAPTERS.items())
            if adapter.sends and not adapter.realtime]


def _ready_made(words: Words) -> list[dict[str, Any]]:
    """The ready-made journeys with their steps in words (built with placeholder template ids:
    their messages are made with the journey)."""
    found = []
    for code, ready in library.READY.items():
        placeholders = {key: n for n, key in enumerate(ready.messages, start=1)}
        words.templates = {n: words.t("its message %(n)s", n=n) for n in placeholders.values()}
        with_coupon = journeys.DEFINITION.validate_python(ready.build(placeholders, "PROMO", None))
        coupons = any(step.type == "give_coupon" for step in with_coupon.steps)
        shown = with_coupon if coupons else journeys.DEFINITION.validate_python(ready.build(placeholders, None, None))
        found.append({"code": code, "name": ready.name.get(words.label.locale, ready.name["en"]),
                      "description": words.t(ready.description), "trigger": words.trigger(shown.trigger),
                      "steps": words.steps(shown), "numbers": {step.id: n for n, step in enumerate(shown.steps, start=1)},
                      "coupons": coupons, "needs_promotion": ready.needs_promotion})
    words.templates = {}
    return found


def _coupon_promotions(session: Session) -> list[Any]:
    return [p for p in commerce_promotions.list_promotions(session) if p.requires_coupon and p.active]


def _new_journey_page(request: Request, *, values: dict[str, str] | None = None, problem: str | None = None,
                      status_code: int = 200) -> HTMLResponse:
    def work(session: Session) -> dict[str, Any]:
        return {"ready": _ready_made(_words(request)), "promotions": _coupon_promotions(session)}

    return render(request, "marketing/journey_new.html", section="marketing", tab="journeys", channels=_send_channels(request),
                  values=values or {}, problem=problem, key=form_key(), status_code=status_code, **_read(request, work))


@router.get("/journeys/new")
def journey_new(request: Request, staff: Staff = permitted(PERMISSION)) -> HTMLResponse:
    return _new_journey_page(request)


@router.post("/journeys/new")
async def journey_create(request: Request, staff: Staff = permitted(PERMISSION)) -> Response:
    form = await request.form()
    values = {k: str(form.get(k) or "").strip() for k in ("template", "name", "promotion", "channel", "key")}
    try:
        data = JourneyFromTemplate(template=values["template"], name=values["name"] or None,
                                   promotion=values["promotion"] or None, channel=values["channel"] or None)
    except ValidationError:
        return _new_journey_page(request, values=values, status_code=422,
                                 problem=translate(request, "Choose a ready-made journey, a channel and (for a coupon) a promotion."))

    def work(session: Session) -> int:
        journey, _ = journeys.create_from_library(session, data=data, created_by=_actor(staff), locale=staff.user.locale,
                                                  idempotency_key=f"console:{values['key']}" if values["key"] else None)
        return journey.id

    journey_id, error = attempt(request, work)
    if error:
        return _new_journey_page(request, values=values, problem=error, status_code=422)
    return RedirectResponse(f"/console/marketing/journeys/{journey_id}?done=created", status_code=303)


def _shape(definition: Any) -> tuple[dict[str, int], dict[str, str], set[str]]:
    """A definition's step numbers and kinds by id, and its holdout arms."""
    return ({s.id: n for n, s in enumerate(definition.steps, start=1)}, {s.id: s.type for s in definition.steps},
            {a.name for s in definition.steps if s.type == "split" for a in s.arms if a.holdout})


def _where(words: Words, enrollment: Any, shape: tuple[dict[str, int], dict[str, str], set[str]]) -> str:
    """Where a person is in a journey, in words."""
    numbers, kinds, holdouts = shape
    if enrollment.status != "waiting":
        return "—"
    if enrollment.waiting_step:
        return words.t("step %(n)s: waiting for the event", n=numbers.get(enrollment.waiting_step, "?"))
    if enrollment.step_id is None:
        return words.t("holdout: followed for the goal") if enrollment.arm in holdouts else words.t("waiting out the last wait")
    number = numbers.get(enrollment.step_id, "?")
    return words.t("before step %(n)s: %(kind)s", n=number, kind=words.label.step_kind(kinds.get(enrollment.step_id)))


def _people_rows(session: Session, words: Words, journey_id: int, status: str | None, before: int | None) -> dict[str, Any]:
    rows = journeys.enrollments_page(session, journey_id=journey_id, status=status, limit=PEOPLE_PAGE + 1, before_id=before)
    more = len(rows) > PEOPLE_PAGE
    rows = rows[:PEOPLE_PAGE]
    shapes: dict[int, Any] = {}
    found = []
    for enrollment in rows:
        if enrollment.version not in shapes:
            shapes[enrollment.version] = _shape(journeys.definition_of(session, journey_id, enrollment.version))
        found.append({"e": enrollment, "where": _where(words, enrollment, shapes[enrollment.version])})
    return {"enrollments": found, "who": people.briefs(session, [e.profile_id for e in rows]), "status": status,
            "before": before, "next_before": rows[-1].id if more else None, "currency": words.currency}


def _journey_context(session: Session, request: Request, journey_id: int, *, status: str | None = None,
                     before: int | None = None) -> dict[str, Any]:
    journey = journeys.get_journey(session, journey_id)
    definition = journeys.current_definition(journey)
    words = _words(request, session)
    steps = words.steps(definition)
    counts = journeys.counts(session, journey_id)
    passed = results.passed_steps(session, journey_id)
    return {
        "journey": journey, "definition": definition, "steps": steps, "numbers": {s.id: s.number for s in steps},
        "description": words.t(journey.description) if journey.description else "",
        "step_counts": {s.id: (passed.get(s.id, 0), counts["at_step"].get(s.id, 0)) for s in steps},
        "trigger": words.trigger(definition.trigger), "goal": words.goal(definition.goal),
        "audience": words.inline(definition.audience) if definition.audience is not None else None,
        "reentry": words.reentry(definition.reentry), "cap": words.cap(definition.frequency_cap),
        "counts": counts, "summary": results.summary(session, journey_id),
        "definition_json": json.dumps(journey.definition, ensure_ascii=False, indent=2),
        **_people_rows(session, words, journey_id, status, before),
    }


def _status_filter(value: str) -> str | None:
    return value if value in ("waiting", "done") else None


@router.get("/journeys/{journey_id}")
def journey_page(journey_id: RowId, request: Request, status: str = "", before: str = "", done: str = "",
                 staff: Staff = permitted(PERMISSION)) -> HTMLResponse:
    context = _read(request, lambda s: _journey_context(s, request, journey_id, status=_status_filter(status),
                                                        before=_after_id(before)))
    return render(request, "marketing/journey.html", section="marketing", tab="journeys", flash=_done(request, done), **context)


@router.get("/journeys/{journey_id}/people")
def journey_people(journey_id: RowId, request: Request, status: str = "", before: str = "",
                   staff: Staff = permitted(PERMISSION)) -> HTMLResponse:
    """The people of a journey, a page at a time (the journey page's #people)."""
    def work(session: Session) -> dict[str, Any]:
        journey = journeys.get_journey(session, journey_id)
        return {"journey": journey, **_people_rows(session, _words(request, session), journey_id, _status_filter(status),
                                                   _after_id(before))}

    return render(request, "marketing/_people.html", **_read(request, work))


JOURNEY_ACTIONS = ("start", "pause", "archive")


def _journey_done(request: Request, action: str) -> str:
    if action == "start":
        return translate(request, "The journey is running: people enter on its trigger.")
    if action == "pause":
        return translate(request, "The journey is paused: nobody enters and nobody moves until it starts again.")
    return translate(request, "The journey is archived: everyone in it left.")


@router.post("/journeys/{journey_id}/{action}")
def journey_action(journey_id: RowId, action: str, request: Request, staff: Staff = permitted(PERMISSION)) -> Response:
    if action not in JOURNEY_ACTIONS:
        return render(request, "error.html", status_code=404, title="404", message=translate(request, "Not found"))

    def work(session: Session) -> None:
        journey = journeys.set_status(session, journey_id=journey_id, action=action)
        if journey.status == "active":  # as the API does: whoever waits and is due moves now
            ADVANCE.enqueue(session, {}, dedupe_key="marketing:advance", coalesce=True)

    _, error = attempt(request, work)
    flash = ("error", error) if error else ("ok", _journey_done(request, action))
    if not _hx(request) and not error:
        return RedirectResponse(f"/console/marketing/journeys/{journey_id}", status_code=303)
    context = _read(request, lambda s: _journey_context(s, request, journey_id))
    template = "marketing/_journey.html" if _hx(request) else "marketing/journey.html"
    return render(request, template, section="marketing", tab="journeys", flash=flash, status_code=422 if error else 200,
                  **context)


@router.get("/enrollments/{enrollment_id}")
def enrollment_page(enrollment_id: RowId, request: Request, staff: Staff = permitted(PERMISSION)) -> HTMLResponse:
    def work(session: Session) -> dict[str, Any]:
        enrollment = journeys.get_enrollment(session, enrollment_id)
        journey = journeys.get_journey(session, enrollment.journey_id)
        definition = journeys.definition_of(session, journey.id, enrollment.version)
        words = _words(request, session)
        steps = {s.id: s for s in words.steps(definition)}
        history = [{"at": row.at, "step": steps.get(row.step_id), "step_id": row.step_id, "outcome": words.outcome(row.outcome)}
                   for row in journeys.steps_of(session, enrollment_id)]
        return {"enrollment": enrollment, "journey": journey, "history": history,
                "where": _where(words, enrollment, _shape(definition)),
                "customer": people.briefs(session, [enrollment.profile_id]).get(enrollment.profile_id),
                "currency": request.app.state.settings.commerce_currency}

    return render(request, "marketing/enrollment.html", section="marketing", tab="journeys", **_read(request, work))


def _results_context(session: Session, request: Request, journey_id: int) -> dict[str, Any]:
    journey = journeys.get_journey(session, journey_id)
    words = _words(request, session)
    found = results.results(session, journey_id)
    definition = journeys.current_definition(journey)
    steps = {s.id: s for s in words.steps(definition)}
    found["sends"].sort(key=lambda send: steps[send.step_id].number if send.step_id in steps else 10**6)  # as the steps go
    reasons = sorted({reason for send in found["sends"] for reason in send.skipped})
    send_names = [f"{steps[s.step_id].number}. {steps[s.step_id].text}" if s.step_id in steps else s.step_id for s in found["sends"]]
    sends_chart = None
    if found["sends"]:
        series = [(words.t("Queued"), [s.queued for s in found["sends"]])]
        series += [(words.t("Skipped: %(reason)s", reason=words.label.send_reason(reason)),
                    [s.skipped.get(reason, 0) for s in found["sends"]]) for reason in reasons]
        sends_chart = charts.bars([words.t("Step %(n)s", n=steps[s.step_id].number) if s.step_id in steps else s.step_id
                                   for s in found["sends"]], series)
        for one in sends_chart["series"]:  # one bar per step: queued and each reason stacked
            one["stack"], one["label"] = "messages", {"show": False}
    arm_names = [_arm_name(words, a) for a in found["arms"]]
    arms_chart = None
    if len(found["arms"]) > 1 and any(a.converted for a in found["arms"]):
        arms_chart = charts.bars([a.arm or words.t("Without an arm") for a in found["arms"]],
                                 [(words.t("Conversion, %"), [a.rate or 0 for a in found["arms"]])], percent=True)
    return {"journey": journey, **found, "steps": steps, "reasons": reasons, "send_names": send_names, "arm_names": arm_names,
            "sends_chart": sends_chart, "arms_chart": arms_chart, "currency": request.app.state.settings.commerce_currency}


def _arm_name(words: Words, arm: results.ArmResult) -> str:
    if arm.arm is None:
        return words.t("Without an arm")
    return words.t("%(arm)s (holdout)", arm=arm.arm) if arm.holdout else arm.arm


@router.get("/people/{customer_id}/channels")
def channels_page(customer_id: RowId, request: Request, purpose: str = "marketing", staff: Staff = permitted(PERMISSION)) -> HTMLResponse:
    """A person's channels as the next-best-channel model ranks them, and why (optichannel/ranking.py)."""
    purpose = purpose if purpose in ("marketing", "service") else "marketing"

    def work(session: Session) -> dict[str, Any]:
        found = ranking.of_person(session, request.app.state.settings, customer_id=customer_id, purpose=purpose)
        return {"ranking": found, "purpose": purpose,
                "customer": people.briefs(session, [found["customer_id"]]).get(found["customer_id"])}

    return render(request, "marketing/channels.html", section="marketing", tab="segments", **_read(request, work))


@router.get("/journeys/{journey_id}/results")
def journey_results(journey_id: RowId, request: Request, staff: Staff = permitted(PERMISSION)) -> HTMLResponse:
    return render(request, "marketing/results.html", section="marketing", tab="journeys",
                  **_read(request, lambda s: _results_context(s, request, journey_id)))


# --- templates --------------------------------------------------------------------------------


@router.get("/templates")
def template_list(request: Request, staff: Staff = permitted(PERMISSION)) -> HTMLResponse:
    return render(request, "marketing/templates.html", section="marketing", tab="templates",
                  rows=_read(request, messages.list_templates))


def _template_values(template: Any | None) -> dict[str, str]:
    values = {"name": template.name if template else "", "key": ""}
    for locale in TEMPLATE_LOCALES:
        for part in TEMPLATE_PARTS:
            values[f"{locale}_{part}"] = ((template.content if template else {}).get(locale) or {}).get(part) or ""
    return values


def _template_page(request: Request, *, template: Any | None, values: dict[str, str], problem: str | None = None,
                   flash: tuple[str, str] | None = None, status_code: int = 200) -> HTMLResponse:
    return render(request, "marketing/template.html", section="marketing", tab="templates", item=template, values=values,
                  problem=problem, key=values.get("key") or form_key(), channels=_send_channels(request), flash=flash,
                  status_code=status_code)


@router.get("/templates/new")
def template_new(request: Request, staff: Staff = permitted(PERMISSION)) -> HTMLResponse:
    return _template_page(request, template=None, values=_template_values(None))


async def _template_form(request: Request) -> tuple[dict[str, str], dict[str, dict[str, str]], str | None]:
    """The form's values, the content it makes, and what is wrong with it (in words)."""
    form = await request.form()
    keys = ["name", "key"] + [f"{locale}_{part}" for locale in TEMPLATE_LOCALES for part in TEMPLATE_PARTS]
    values = {k: str(form.get(k) or "").replace("\x00", "").replace("\r\n", "\n") for k in keys}
    content: dict[str, dict[str, str]] = {}
    problem = None
    for locale in TEMPLATE_LOCALES:
        parts = {part: values[f"{locale}_{part}"] for part in TEMPLATE_PARTS if values[f"{locale}_{part}"].strip()}
        if parts and "text" not in parts:
            problem = (translate(request, "The Russian version needs its text (every channel sends the text).") if locale == "ru"
                       else translate(request, "The English version needs its text (every channel sends the text)."))
        if parts:
            content[locale] = parts
    if not content:
        problem = translate(request, "Write the message in Russian, in English or in both.")
    if not values["name"].strip():
        problem = translate(request, "Give the template a name.")
    return values, content, problem


@router.post("/templates/new")
async def template_create(request: Request, staff: Staff = permitted(PERMISSION)) -> Response:
    values, content, problem = await _template_form(request)
    if problem:
        return _template_page(request, template=None, values=values, problem=problem, status_code=422)

    def work(session: Session) -> int:
        template, _ = messages.create_template(session, name=values["name"].strip()[:200], content=content, created_by=_actor(staff),
                                               idempotency_key=f"console:{values['key']}" if values["key"] else None)
        return template.id

    template_id, error = attempt(request, work)
    if error:
        return _template_page(request, template=None, values=values, problem=error, status_code=422)
    return RedirectResponse(f"/console/marketing/templates/{template_id}?done=saved", status_code=303)


@router.get("/templates/{template_id}")
def template_page(template_id: RowId, request: Request, done: str = "", staff: Staff = permitted(PERMISSION)) -> HTMLResponse:
    template = _read(request, lambda s: messages.get_template(s, template_id))
    return _template_page(request, template=template, values=_template_values(template), flash=_done(request, done))


@router.post("/templates/{template_id}")
async def template_update(template_id: RowId, request: Request, staff: Staff = permitted(PERMISSION)) -> Response:
    template = _read(request, lambda s: messages.get_template(s, template_id))
    values, content, problem = await _template_form(request)
    if problem:
        return _template_page(request, template=template, values=values, problem=problem, status_code=422)
    _, error = attempt(request, lambda s: messages.update_template(s, template_id=template_id, name=values["name"].strip()[:200],
                                                                  content=content))
    if error:
        return _template_page(request, template=template, values=values, problem=error, status_code=422)
    return RedirectResponse(f"/console/marketing/templates/{template_id}?done=saved", status_code=303)


@router.get("/templates/{template_id}/customers")
def template_customers(template_id: RowId, request: Request, q: str = "", staff: Staff = permitted(PERMISSION)) -> HTMLResponse:
    """Customers to preview with, found by a phone, an email, a card or a name (the search box)."""
    q = q.replace("\x00", "").strip()[:320]
    rows: list[dict[str, Any]] = []
    if q:
        def work(session: Session) -> list[dict[str, Any]]:
            found = customers_service.search_customers(session, rules=request.app.state.identifier_rules, q=q, limit=SEARCH_LIMIT)
            return [people.brief(item["id"], traits=item["traits"], identifiers=item["identifiers"]) for item in found]

        try:
            rows = _read(request, work)
        except AppError:
            rows = []
    return render(request, "marketing/_customer_pick.html", rows=rows, q=q)


def _customer_id(value: Any) -> int | None:
    text = str(value or "").strip().lstrip("#")
    return int(text) if text.isdigit() and 0 < int(text) < 2**62 else None


@router.post("/templates/{template_id}/preview")
async def template_preview(template_id: RowId, request: Request, staff: Staff = permitted(PERMISSION)) -> HTMLResponse:
    """The saved template as this customer would get it now (nothing is sent)."""
    form = await request.form()
    customer_id = _customer_id(form.get("customer_id"))
    locale = str(form.get("locale") or "")
    settings = request.app.state.settings
    if customer_id is None:
        return render(request, "marketing/_preview.html", problem=translate(request, "Choose a customer: their number, or find them."),
                      status_code=422)

    def work(session: Session) -> dict[str, Any]:
        profile = customers_service.get_profile(session, customer_id)
        rendered = messages.preview(session, settings=settings, template=messages.get_template(session, template_id),
                                    profile_id=profile.id, locale=locale if locale in TEMPLATE_LOCALES else None)
        return {"rendered": rendered, "customer": people.briefs(session, [profile.id])[profile.id]}

    try:
        found = _read(request, work)
    except AppError as exc:
        return render(request, "marketing/_preview.html", problem=explain(request, exc), status_code=422)
    return render(request, "marketing/_preview.html", problem=None, template_id=template_id, channels=_send_channels(request),
                  key=form_key(), **found)


def _channel_reasons(session: Session, request: Request, profile_id: int, channel: str | None) -> dict[str, str]:
    """Why no channel takes a marketing message to this person: {channel: reason} (outbound's own check)."""
    try:
        outbound.choose(session, settings=request.app.state.settings, customer_id=profile_id, channel=channel, purpose="marketing")
    except AppError as exc:
        return dict((exc.details or {}).get("reasons") or {})
    return {}


@router.post("/templates/{template_id}/test-send")
async def template_test_send(template_id: RowId, request: Request, staff: Staff = permitted(PERMISSION)) -> HTMLResponse:
    """Send the template to one customer now (no quiet hours, no caps; their marketing consent
    is still needed), and say what happened: queued on a channel, or skipped and why."""
    form = await request.form()
    customer_id = _customer_id(form.get("customer_id"))
    channel = str(form.get("channel") or "").strip() or None
    key = str(form.get("key") or "").strip()[:64] or form_key()
    settings = request.app.state.settings
    if customer_id is None:
        return render(request, "marketing/_test_send.html", problem=translate(request, "Choose a customer: their number, or find them."),
                      status_code=422)
    if channel is not None and channel not in {c["code"] for c in _send_channels(request)}:
        channel = None

    def work(session: Session) -> tuple[Any, int]:
        profile = customers_service.get_profile(session, customer_id)
        outcome = messages.deliver(session, settings=settings, profile_id=profile.id, template=messages.get_template(session, template_id),
                                   channel=channel, key=f"test:console:{key}", test=True)
        return outcome, profile.id

    done, error = attempt(request, work)
    if error:
        return render(request, "marketing/_test_send.html", problem=error, status_code=422)
    outcome, profile_id = done
    reasons = _read(request, lambda s: _channel_reasons(s, request, profile_id, channel)) \
        if outcome.status == "skipped" and outcome.reason == "customer_unreachable" else {}
    return render(request, "marketing/_test_send.html", problem=None, outcome=outcome, reasons=reasons, channel=channel)


# --- campaigns --------------------------------------------------------------------------------

#: The form's variant rows (CampaignCreate takes up to 5; the console offers 3).
VARIANT_ROWS = ("A", "B", "C")
#: What an A/B test's winner is chosen by (campaigns/schemas.py AbTest.metric).
AB_METRICS = ("converted", "delivered")
#: A campaign that may still be cancelled (nobody else gets it).
CANCELLABLE = ("draft", "scheduled", "sending", "testing")
#: The fields of the new campaign form.
CAMPAIGN_FIELDS = ("name", "segment_id", "channel", "holdout", "when", "send_at", "local", "local_time", "best_time", "per_minute", "ab",
                   "test_percent", "metric", "after_hours", "key", *(f"template_{v}" for v in VARIANT_ROWS),
                   *(f"percent_{v}" for v in VARIANT_ROWS))
CAMPAIGN_DEFAULTS = {"when": "now", "local_time": "10:00", "holdout": "0", "test_percent": "20", "metric": "converted",
                     "after_hours": "4", "percent_A": "100"}


def _campaign_totals(found: dict[str, Any]) -> dict[str, int]:
    """Messages and conversions of every arm together."""
    keys = ("people", "queued", "sent", "delivered", "failed", "opened", "clicked", "converted", "revenue")
    arms = found["arms"].values()
    totals = {key: sum(int(arm.get(key, 0)) for arm in arms) for key in keys}
    totals["skipped"] = sum(sum(arm["skipped"].values()) for arm in arms)
    return totals


def _campaign_view(session: Session, campaign: Any) -> dict[str, Any]:
    """A campaign's results (per arm, and all together) and what is still to go: people enrolled
    but not reached yet (the pace, their local time) and messages still in the channel's queue.
    `shown` is the status in words' code: a campaign whose people are all enrolled (`sent`) is
    still `sending` while any of that is left, and says so when nothing was sent at all."""
    found = campaign_service.results(session, campaign)
    totals = _campaign_totals(found)
    waiting = 0
    if campaign.journey_id is not None:
        at_step = journeys.counts(session, campaign.journey_id)["at_step"]
        waiting = sum(n for step, n in at_step.items() if step != "end")  # "end": a holdout followed for the goal
    in_queue = max(0, totals["queued"] - totals["sent"] - totals["failed"])
    shown = campaign.status
    if campaign.status == "sent" and (waiting or in_queue):
        shown = "sending"
    elif campaign.status == "sent" and not totals["queued"]:
        shown = "nothing_sent"
    return {"campaign": campaign, "results": found, "totals": totals, "waiting": waiting, "in_queue": in_queue, "shown": shown,
            "started": campaign.started_at is not None}


@router.get("/campaigns")
def campaign_list(request: Request, staff: Staff = permitted(PERMISSION)) -> HTMLResponse:
    def work(session: Session) -> dict[str, Any]:
        return {"rows": [_campaign_view(session, c) for c in campaign_service.list_campaigns(session)],
                "segment_names": {s.id: s.name for s in segments.list_segments(session, include_archived=True)},
                "currency": request.app.state.settings.commerce_currency}

    return render(request, "marketing/campaigns.html", section="marketing", tab="campaigns", **_read(request, work))


def _campaign_choices(session: Session) -> dict[str, Any]:
    return {"segments": segments.list_segments(session), "templates": messages.list_templates(session)}


def _campaign_form(request: Request, *, values: dict[str, str], problems: list[str] | None = None,
                   status_code: int = 200) -> HTMLResponse:
    return render(request, "marketing/campaign_form.html", section="marketing", tab="campaigns", values=values,
                  problems=problems or [], key=values.get("key") or form_key(), channels=_send_channels(request),
                  variant_rows=VARIANT_ROWS, metrics=AB_METRICS, timezone=request.app.state.settings.console_timezone,
                  status_code=status_code, **_read(request, _campaign_choices))


@router.get("/campaigns/new")
def campaign_new(request: Request, staff: Staff = permitted(PERMISSION)) -> HTMLResponse:
    return _campaign_form(request, values=dict(CAMPAIGN_DEFAULTS))


def _whole(value: str, low: int, high: int) -> int | None:
    """A whole number typed in a form, within [low, high]; None when it is not one."""
    text = value.strip().replace("\u00a0", "").replace(" ", "")
    if not text.lstrip("-").isdigit() or len(text) > 9:
        return None
    number = int(text)
    return number if low <= number <= high else None


def _parse_campaign(request: Request, values: dict[str, str], choices: dict[str, Any]) -> tuple[CampaignCreate | None, list[str]]:
    """The form as a CampaignCreate, or what is wrong with it (every problem, in the reader's words)."""
    problems: list[str] = []
    name = values["name"].strip()
    if not name:
        problems.append(translate(request, "Give the campaign a name."))
    elif len(name) > 200:
        problems.append(translate(request, "The name is at most 200 characters."))
    segment_id = _whole(values["segment_id"], 1, 2**62)
    if segment_id is None or segment_id not in {s.id for s in choices["segments"]}:
        problems.append(translate(request, "Choose a segment (one that is not archived)."))
    channel = values["channel"] or None
    if channel is not None and channel not in {c["code"] for c in _send_channels(request)}:
        problems.append(translate(request, "Choose a channel from the list."))
    templates = {t.id for t in choices["templates"]}
    variants: list[dict[str, Any]] = []
    for row in VARIANT_ROWS:
        chosen = values[f"template_{row}"]
        if not chosen:
            continue
        template_id = _whole(chosen, 1, 2**62)
        if template_id is None or template_id not in templates:
            problems.append(translate(request, "Variant %(variant)s: choose a template from the list.", variant=row))
            continue
        variants.append({"name": row, "template_id": template_id, "raw_percent": values[f"percent_{row}"]})
    if not variants and not any(values[f"template_{row}"] for row in VARIANT_ROWS):
        problems.append(translate(request, "Choose the template of variant A."))
    if len(variants) > 1:
        for variant in variants:
            variant["percent"] = _whole(variant["raw_percent"], 0, 100)
            if variant["percent"] is None:
                problems.append(translate(request, "Variant %(variant)s: its share is a whole number from 0 to 100.",
                                          variant=variant["name"]))
        if all(v["percent"] is not None for v in variants) and sum(v["percent"] for v in variants) != 100:
            problems.append(translate(request, "The variants' shares must add up to 100 (now %(sum)s).",
                                      sum=sum(v["percent"] for v in variants)))
    else:
        for variant in variants:
            variant["percent"] = 100
    holdout = _whole(values["holdout"] or "0", 0, 50)
    if holdout is None:
        problems.append(translate(request, "The holdout is a whole number of percent from 0 to 50."))
    send_at = None
    if values["when"] == "at":
        try:
            typed = datetime.fromisoformat(values["send_at"].strip())
        except ValueError:
            problems.append(translate(request, "Give the date and time to send at."))
        else:
            zone = ZoneInfo(request.app.state.settings.console_timezone)
            send_at = (typed if typed.tzinfo else typed.replace(tzinfo=zone)).astimezone(timezone.utc)
            if send_at < utcnow() - timedelta(minutes=1):
                problems.append(translate(request, "The time to send at has passed: choose a later one."))
    local_time = None
    if values["best_time"]:
        local_time = "best"
    elif values["local"]:
        local_time = values["local_time"].strip()[:5]
        if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", local_time):
            problems.append(translate(request, "Give the time of day (HH:MM) to send at in each person's own time."))
    per_minute = None
    if values["per_minute"].strip():
        per_minute = _whole(values["per_minute"], 1, 1_000_000)
        if per_minute is None:
            problems.append(translate(request, "The pace is a whole number of people a minute, from 1 to 1,000,000."))
    ab_test = None
    if values["ab"]:
        if len(variants) < 2:
            problems.append(translate(request, "An A/B test needs two variants or more."))
        ab_test = {"test_percent": _whole(values["test_percent"], 1, 90), "metric": values["metric"],
                   "after_hours": _whole(values["after_hours"], 1, 24 * 14)}
        if ab_test["test_percent"] is None:
            problems.append(translate(request, "The A/B test group is a whole number of percent from 1 to 90."))
        if ab_test["after_hours"] is None:
            problems.append(translate(request, "The A/B test lasts a whole number of hours, from 1 to 336 (14 days)."))
        if ab_test["metric"] not in AB_METRICS:
            problems.append(translate(request, "Choose what picks the A/B test's winner."))
    if problems:
        return None, problems
    try:
        data = CampaignCreate(name=name, segment_id=segment_id, channel=channel, holdout_percent=holdout, send_at=send_at,
                              local_time=local_time, per_minute=per_minute, ab_test=ab_test,
                              variants=[{k: v[k] for k in ("name", "template_id", "percent")} for v in variants])
    except ValidationError as exc:  # what the checks above did not foresee
        return None, [form_problem(request, exc)]
    return data, []


def _campaign_problem(request: Request, exc: AppError) -> str:
    """A campaign's refusal in the reader's words (segments and templates named as a campaign
    uses them; the rest as actions.explain says it)."""
    if exc.code == "unknown_segment":
        return translate(request, "The segment was archived meanwhile: choose another.")
    if exc.code == "unknown_template":
        return translate(request, "A template was archived meanwhile: choose another.")
    if exc.code == "segment_archived":
        return translate(request, "The campaign's segment was archived: it cannot be scheduled.")
    return explain(request, exc)


def _campaign_write(request: Request, work: Any) -> tuple[Any, str | None]:
    """`actions.attempt` with a campaign's refusals in its own words."""
    try:
        return database(request).run_write(work), None
    except AppError as exc:
        return None, _campaign_problem(request, exc)
    except ValidationError as exc:
        return None, form_problem(request, exc)


@router.post("/campaigns/new")
async def campaign_create(request: Request, staff: Staff = permitted(PERMISSION)) -> Response:
    form = await request.form()
    values = {k: str(form.get(k) or "").replace("\x00", "").strip() for k in CAMPAIGN_FIELDS}
    data, problems = _parse_campaign(request, values, _read(request, _campaign_choices))
    if data is None:
        return _campaign_form(request, values=values, problems=problems, status_code=422)

    def work(session: Session) -> int:
        campaign, _ = campaign_service.create_campaign(session, data=data, created_by=_actor(staff),
                                                       idempotency_key=f"console:{values['key']}" if values["key"] else None)
        return campaign.id

    campaign_id, error = _campaign_write(request, work)
    if error:
        return _campaign_form(request, values=values, problems=[error], status_code=422)
    return RedirectResponse(f"/console/marketing/campaigns/{campaign_id}?done=created", status_code=303)


def _campaign_context(session: Session, request: Request, campaign_id: int) -> dict[str, Any]:
    campaign = campaign_service.get_campaign(session, campaign_id)
    view = _campaign_view(session, campaign)
    segment = segments.get_segment(session, campaign.segment_id)
    names = {t.id: t.name for t in messages.list_templates(session)}
    variants = [{**v, "template": names.get(v["template_id"], f"#{v['template_id']}")} for v in campaign.variants]
    order = {v["name"]: n for n, v in enumerate(campaign.variants)}
    arms = sorted(view["results"]["arms"].items(), key=lambda item: (item[0] == campaign_service.HOLDOUT, order.get(item[0], 99), item[0]))
    skipped: dict[str, int] = {}
    for _name, arm in arms:
        for reason, n in arm["skipped"].items():
            skipped[reason] = skipped.get(reason, 0) + n
    return {**view, "segment": segment, "variants": variants, "templates_of": {v["name"]: v["template"] for v in variants},
            "arms": arms, "skipped": sorted(skipped.items()), "holdout_name": campaign_service.HOLDOUT,
            "cancellable": campaign.status in CANCELLABLE, "currency": request.app.state.settings.commerce_currency}


def _campaign_done(request: Request, done: str) -> tuple[str, str] | None:
    if done == "created":
        return "ok", translate(request, "Created as a draft: nothing is sent until you schedule it.")
    return None


@router.get("/campaigns/{campaign_id}")
def campaign_page(campaign_id: RowId, request: Request, done: str = "", staff: Staff = permitted(PERMISSION)) -> HTMLResponse:
    context = _read(request, lambda s: _campaign_context(s, request, campaign_id))
    return render(request, "marketing/campaign.html", section="marketing", tab="campaigns", flash=_campaign_done(request, done),
                  **context)


CAMPAIGN_ACTIONS = ("schedule", "cancel")


def _campaign_action_done(request: Request, action: str, campaign: Any) -> str:
    if action == "cancel":
        return translate(request, "The campaign is cancelled: nobody else gets it.")
    if campaign.send_at is not None and campaign.send_at > utcnow():
        return translate(request, "Scheduled for %(time)s.", time=_words(request).fmt.datetime(campaign.send_at))
    return translate(request, "Scheduled: it starts within a minute.")


@router.post("/campaigns/{campaign_id}/{action}")
def campaign_action(campaign_id: RowId, action: str, request: Request, staff: Staff = permitted(PERMISSION)) -> Response:
    if action not in CAMPAIGN_ACTIONS:
        return render(request, "error.html", status_code=404, title="404", message=translate(request, "Not found"))

    def work(session: Session) -> Any:
        if action == "cancel":
            return campaign_service.cancel(session, campaign_id=campaign_id)
        campaign = campaign_service.schedule(session, campaign_id=campaign_id)
        CAMPAIGNS.enqueue(session, {}, dedupe_key="marketing:campaigns", coalesce=True)  # as the API does
        return campaign

    campaign, error = _campaign_write(request, work)
    flash = ("error", error) if error else ("ok", _campaign_action_done(request, action, campaign))
    if not _hx(request) and not error:
        return RedirectResponse(f"/console/marketing/campaigns/{campaign_id}", status_code=303)
    context = _read(request, lambda s: _campaign_context(s, request, campaign_id))
    template = "marketing/_campaign.html" if _hx(request) else "marketing/campaign.html"
    return render(request, template, section="marketing", tab="campaigns", flash=flash, status_code=422 if error else 200,
                  **context)
