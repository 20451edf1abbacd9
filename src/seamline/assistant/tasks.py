"""The bot's background work.

Every `ASSISTANT_JOB_SECONDS`: conversations only the bot answered that went quiet are resolved
by it (containment), and people waiting for a product are told it is back. Both are also
`seamline assistant run` for cron.

And one job per message the bot's model was unsure of when an LLM is set up (`llm.TASK`,
`answer_deferred`): the LLM is asked which intent the message has, then the bot answers it.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from seamline.assistant import llm, nlu, service
from seamline.assistant.models import AssistantState, AssistantTurn
from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.core.queue import Periodic, TaskRegistry
from seamline.core.schemas import strip_nul
from seamline.core.time import utcnow
from seamline.customers import resolution
from seamline.inbox import realtime
from seamline.inbox import service as inbox
from seamline.inbox.adapters import InboundMessage, adapter_for
from seamline.inbox.models import InboxConversation, InboxInbound, InboxMessage

log = structlog.get_logger("seamline.assistant")

ASSISTANT_JOB_SECONDS = 60.0
#: How long before its message a stored raw part is looked for (`_inbound_of`): parts are
#: processed within moments of arriving, a failed one when it is retried.
RAW_LOOKBACK = timedelta(days=2)
#: Clocks of the machine that stored the part and the one that processed it may differ a little.
RAW_CLOCK_SLACK = timedelta(minutes=1)


def run(database: Database, settings: Settings) -> dict[str, int]:
    with database.write() as session:
        closed = service.close_idle(session, settings=settings)
    with database.write() as session:
        told = service.notify_back_in_stock(session, settings=settings)
    return {"resolved": closed, "back_in_stock": told}


def periodic_tasks(database: Database, settings: Settings) -> list[Periodic]:
    if not settings.assistant_enabled:
        return []
    return [Periodic("assistant", ASSISTANT_JOB_SECONDS, lambda: run(database, settings))]


def register_tasks(registry: TaskRegistry, database: Database, settings: Settings) -> None:
    """Bind the LLM job (always: jobs queued before the LLM was turned off still answer their
    messages, without it)."""
    registry.add(llm.TASK, lambda _context, args: answer_deferred(database, settings, args))


# --- a message the model was unsure of: the LLM's intent, then the answer ----------------------------


def answer_deferred(database: Database, settings: Settings, args: dict[str, Any]) -> str:
    """Answer a message the bot deferred (`service._ask_llm`): ask the LLM which intent it has,
    outside any transaction, then continue the dialogue with that intent as a certain prediction
    (or, when the LLM gave none, with the model's own, so the bot says it did not understand or
    hands over, as without an LLM), send the reply and hand over if the turn says so, in one
    transaction. Nothing is done when the message no longer needs it (`_moot`): so a job run
    twice answers once. What it came to: the turn's outcome, or why it did nothing."""
    conversation_id, message_id = int(args["conversation_id"]), int(args["message_id"])
    with database.read() as session:
        why = _moot(session, session.get(InboxConversation, conversation_id), session.get(InboxMessage, message_id))
        text = "" if why else (session.get(InboxMessage, message_id).text or "").strip()
    if why:
        log.info("deferred message needs no answer", conversation_id=conversation_id, message_id=message_id, reason=why)
        return why
    intent = llm.classify(text, settings=settings)
    return database.run_write(lambda session: _continue(session, settings, conversation_id, message_id, intent))


def _moot(session: Session, conversation: InboxConversation | None, message: InboxMessage | None) -> str | None:
    """Why a deferred message needs no answer any more, or None when it does."""
    if conversation is None or message is None or message.conversation_id != conversation.id:
        return "gone"
    if not conversation.handled_by_bot or conversation.assignee_id is not None:
        return "people"  # handed over, or an agent took the conversation
    if conversation.status != "open":
        return "closed"
    answered = session.scalar(select(AssistantTurn.id).where(
        AssistantTurn.conversation_id == conversation.id, AssistantTurn.message_id == message.id,
        AssistantTurn.outcome != "deferred").limit(1))
    if answered is not None:
        return "answered"
    newer = session.scalar(select(InboxMessage.id).where(
        InboxMessage.conversation_id == conversation.id, InboxMessage.direction == "in", InboxMessage.id > message.id).limit(1))
    if newer is not None:
        return "moved_on"  # the customer wrote again and that message was answered in its own turn
    return None


def _continue(session: Session, settings: Settings, conversation_id: int, message_id: int, intent: str | None) -> str:
    conversation = session.get(InboxConversation, conversation_id, with_for_update=True)
    message = session.get(InboxMessage, message_id)
    state = session.get(AssistantState, conversation_id)
    why = _moot(session, conversation, message) or ("gone" if state is None else None)
    if why:
        log.info("deferred message needs no answer", conversation_id=conversation_id, message_id=message_id, reason=why)
        return why
    text = (message.text or "").strip()
    local = service.model(session).predict(text)
    prediction = nlu.Prediction(intent=intent, confidence=1.0, lang=local.lang) if intent else local
    now = utcnow()
    # The turn's time is the customer's wait: from their message to this reply.
    started = time.perf_counter() - max((now - message.created_at).total_seconds(), 0.0)
    turn = service.Turn(session=session, settings=settings, conversation=conversation, state=state, message=message,
                        inbound=_inbound_of(session, message), lang=state.lang or "ru",
                        person_id=resolution.canonical_profile(session, conversation.customer_id).id)
    mark = realtime.mark(session)
    try:
        with session.begin_nested():
            # This turn replaces the deferred one: one turn per message in the bot's numbers.
            session.execute(delete(AssistantTurn).where(AssistantTurn.conversation_id == conversation.id,
                                                        AssistantTurn.message_id == message.id, AssistantTurn.outcome == "deferred"))
            state.turns = max((state.turns or 0) - 1, 0)
            reply = turn.run(prediction)
            kept = service._finish(session, turn, reply, started=started, now=now)
    except Exception as exc:  # noqa: BLE001 - as in the inbox: a bot that fails hands over, nobody is left unanswered
        realtime.discard_since(session, mark)
        log.exception("the bot failed on a deferred message; handing over", conversation_id=conversation_id, error=str(exc)[:300])
        inbox.hand_over(session, settings=settings, conversation=conversation, handover=inbox.Handover(reason="error"), route=True)
        state.outcome, state.handover_reason, state.ended_at, state.pending = "handed_over", "error", now, None
        return "error"
    if isinstance(kept, inbox.Handover):
        inbox.hand_over(session, settings=settings, conversation=conversation, handover=kept, route=True)
    log.info("deferred message answered", conversation_id=conversation_id, message_id=message_id, intent=reply.topic,
             outcome=reply.outcome, llm=intent is not None)
    return reply.outcome


def _inbound_of(session: Session, message: InboxMessage) -> InboundMessage:
    """The message as its channel delivered it, parsed again from its stored raw part (the turn
    needs it to know whether the provider vouches for the sender). Found through the index of
    parts by status and time: the part was stored before its message and is processed; a
    search by `message_id` alone would read the whole table, which has no index for it. A
    message without one (or one that cannot be read) is taken as nobody vouches for: only
    public answers, or the one-time code."""
    row = session.scalar(select(InboxInbound).where(
        InboxInbound.status == "processed", InboxInbound.received_at <= message.created_at + RAW_CLOCK_SLACK,
        InboxInbound.received_at >= message.created_at - RAW_LOOKBACK, InboxInbound.message_id == message.id)
        .order_by(InboxInbound.received_at.desc()).limit(1))
    if row is not None:
        try:
            return strip_nul(adapter_for(row.channel).parse(row.payload))
        except Exception as exc:  # noqa: BLE001 - then nobody vouches for the sender
            log.warning("stored part of a deferred message cannot be read", message_id=message.id, error=type(exc).__name__)
    else:
        log.warning("no stored part for a deferred message", message_id=message.id)
    return InboundMessage(channel=message.channel, provider_message_id=message.provider_message_id or "", identifiers=[],
                          text=message.text or "")
