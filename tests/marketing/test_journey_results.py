"""A journey's results (marketing/journeys/results.py): people entered and still in, the messages
of each send step queued or skipped by reason, the people who passed each step, and conversions
with revenue by A/B arm, the holdout's rate the baseline of each arm's lift."""

from __future__ import annotations

from collections import Counter

from seamline.core.time import utcnow
from seamline.marketing.journeys import engine, results
from seamline.marketing.journeys.definition import Arm, SplitStep
from seamline.marketing.journeys.models import MarketingEnrollment
from tests.marketing.test_engine import api_journey, enroll, journey, soon, template
from tests.marketing.test_journeys import advance

PEOPLE = 20
ARMS = [Arm(name="A", percent=50, next="hello"), Arm(name="B", percent=30, next="hello"),
        Arm(name="holdout", percent=20, holdout=True)]


def _people(client, headers) -> dict[int, bool]:
    """Customers with an email; every other one gave marketing consent. {id: consent}"""
    found = {}
    for n in range(PEOPLE):
        consent = n % 2 == 0
        response = client.post("/v1/customers", headers=headers, json={
            "identifiers": [{"type": "email", "value": f"p{n}@example.com"}], "traits": {"first_name": f"P{n}"},
            "consents": [{"channel": "email", "purpose": "marketing", "granted": consent}]})
        assert response.status_code in (200, 201), response.text
        found[response.json()["customer"]["id"]] = consent
    return found


def _convert(client, enrollment_id: int, order_id: int, revenue: int) -> None:
    """The goal reached, as the engine records it (an order of `revenue`)."""
    def work(session):  # noqa: ANN001, ANN202
        row = session.get(MarketingEnrollment, enrollment_id)
        row.converted_at, row.conversion_order_id, row.conversion_revenue = utcnow(), order_id, revenue
        row.status, row.exit_reason, row.step_id, row.wake_at = "done", "goal", None, None

    client.app.state.database.run_write(work)


def test_results_by_step_and_arm(client, admin_headers, marketer):
    people = _people(client, admin_headers)
    hello = template(client, marketer)
    journey_id = journey(client, marketer, api_journey(
        {"id": "ab", "type": "split", "arms": [a.model_dump(exclude_none=True) for a in ARMS]},
        {"id": "hello", "type": "send", "template_id": hello, "channel": "email", "next": "again"},
        {"id": "again", "type": "send", "template_id": hello, "channel": "email"},
        goal={"type": "order"}, frequency_cap={"messages": 1, "days": 7}))
    entered = {customer_id: enroll(client, marketer, journey_id, customer_id)["enrollment"]["id"] for customer_id in people}
    advance(client, at=soon())

    split = SplitStep(id="ab", type="split", arms=ARMS)
    arm_of = {c: engine.arm_of(split, journey_id, c).name for c in people}
    held_out = [c for c in people if arm_of[c] == "holdout"]
    sent = [c for c in people if arm_of[c] != "holdout"]
    assert held_out and any(arm_of[c] == "A" for c in people)  # the hash gives every kind of arm here
    consenting = [c for c in sent if people[c]]

    with client.app.state.database.read() as s:
        assert results.summaries(s, []) == {}
        summary = results.summary(s, journey_id)
        assert (summary.entered, summary.in_journey, summary.converted, summary.revenue) == (PEOPLE, len(held_out), 0, 0)
        assert summary.rate == 0.0
        assert results.passed_steps(s, journey_id) == {"ab": PEOPLE, "hello": len(sent), "again": len(sent)}
        first, second = results.send_steps(s, journey_id)
    # consent lets the first message through; the journey's cap (1 per week) skips the second
    assert (first.step_id, first.queued, first.skipped) == ("hello", len(consenting), {"no_marketing_consent": len(sent) - len(consenting)})
    assert (second.step_id, second.queued) == ("again", 0)
    assert second.skipped == {"journey_capped": len(consenting), "no_marketing_consent": len(sent) - len(consenting)}
    assert first.total == second.total == len(sent)
    assert (first.delivered, first.failed, first.opened, first.clicked, first.unsubscribed) == (0, 0, 0, 0, 0)

    # the channel's word and the person's: one delivered and opened and clicked, one bounced
    reader, bounced = consenting[0], consenting[1]

    def track(session):  # noqa: ANN001, ANN202
        from sqlalchemy import select

        from seamline.inbox.models import InboxMessage
        from seamline.marketing.messages.models import MarketingMessage

        for customer_id, status in ((reader, "read"), (bounced, "failed")):
            message = session.scalar(select(MarketingMessage).where(MarketingMessage.profile_id == customer_id,
                                                                    MarketingMessage.step_id == "hello"))
            session.get(InboxMessage, message.inbox_message_id).delivery_status = status
            if status == "read":
                message.opened_at = message.clicked_at = utcnow()

    client.app.state.database.run_write(track)
    with client.app.state.database.read() as s:
        first = results.send_steps(s, journey_id)[0]
    assert (first.queued, first.delivered, first.failed, first.opened, first.clicked, first.unsubscribed) == (
        len(consenting), 1, 1, 1, 1, 0)

    a_person = next(c for c in people if arm_of[c] == "A")
    _convert(client, entered[a_person], 101, 250_00)
    _convert(client, entered[held_out[0]], 102, 100_00)
    with client.app.state.database.read() as s:
        summary = results.summary(s, journey_id)
        by_arm = {a.arm: a for a in results.arms(s, journey_id)}
        everything = results.results(s, journey_id)
    assert (summary.converted, summary.revenue, summary.in_journey) == (2, 350_00, len(held_out) - 1)
    sizes = Counter(arm_of.values())
    assert set(by_arm) == set(sizes)  # everyone reached the split: nobody without an arm
    for name, result in by_arm.items():
        assert result.entered == sizes[name] and result.holdout == (name == "holdout")
        assert result.messages == len([c for c in consenting if arm_of[c] == name])
    assert (by_arm["A"].converted, by_arm["A"].revenue, by_arm["holdout"].converted, by_arm["holdout"].revenue) == (1, 250_00, 1, 100_00)
    baseline = 100.0 / sizes["holdout"]
    assert by_arm["holdout"].rate == round(baseline, 2) and by_arm["holdout"].lift is None
    assert by_arm["A"].lift == round(100 * (round(100.0 / sizes["A"], 2) - round(baseline, 2)) / round(baseline, 2), 2)
    if "B" in by_arm:
        assert by_arm["B"].rate == 0.0 and by_arm["B"].lift == -100.0
    assert [a.arm for a in everything["arms"]][-1] == "holdout"  # the baseline last, after the arms
    assert everything["summary"] == summary and [r.step_id for r in everything["sends"]] == ["hello", "again"]


def test_a_journey_without_a_split_has_one_group_and_no_lift(client, admin_headers, marketer):
    people = _people(client, admin_headers)
    journey_id = journey(client, marketer, api_journey({"id": "hello", "type": "send", "template_id": template(client, marketer),
                                                        "channel": "email"}))
    for customer_id in list(people)[:3]:
        enroll(client, marketer, journey_id, customer_id)
    with client.app.state.database.read() as s:
        before = results.results(s, journey_id)
    assert before["sends"] == [] and before["passed"] == {}  # nobody moved yet
    advance(client, at=soon())
    other = journey(client, marketer, api_journey({"id": "w", "type": "wait", "minutes": 5}), start=False)
    with client.app.state.database.read() as s:
        only, = results.arms(s, journey_id)
        assert (only.arm, only.holdout, only.entered, only.converted, only.lift) == (None, False, 3, 0, None)
        assert results.summary(s, journey_id).in_journey == 0
        empty = results.summary(s, other)
    assert (empty.entered, empty.rate) == (0, None)
