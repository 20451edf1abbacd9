"""What the business changes in the bot, and what it reads about it: the admin surface behind
`/v1/assistant` (api.py) and the console's Chat bot pages (web/console/pages/assistant.py).

Plain functions taking a Session; they check first, then write through `service.py`'s setters,
and never commit (the request or the console's `attempt` does).

- Intents: each one's names, whether it reads a person's data, whether it is human-only (the
  business's choice, else the default of `intents.INTENTS`), the skill a handover requires, its
  example phrases (shipped and the business's) and its answers. `human` and `out_of_scope` have
  no settings (`FIXED_TOPICS`): the bot always hands `human` over and never answers
  `out_of_scope`, both before it looks at a topic's settings, so neither a human-only switch nor
  a skill would change anything (a handover of either carries no topic).
- Answers: every key of `intents.ANSWERS` (an intent's answer, one of its cases, or a step of
  the conversation such as `identify`), its default and the business's template per language,
  the variables it is given and the names the business's template reads that it is not given.
  A template must parse and compile (an unknown filter is refused too); one equal to the default
  is the default (nothing is stored, so a better default in a new release reaches it).
- Phrases: the business's examples, which the model learns from beside the shipped ones. Adding
  a phrase an intent already has (the same words, case and spacing aside) changes nothing; the
  same words under another intent are refused (409 `phrase_exists`): one phrase teaching two
  intents only makes the model unsure.
- Trying a text, the figures of a period and the phrases the bot did not understand, grouped,
  with the intent the current model would now pick for each.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jinja2 import TemplateError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from seamline.assistant import llm, nlu, service
from seamline.assistant.intents import ANSWERS, INTENTS, TOPIC_NAMES, VARIABLES
from seamline.assistant.models import AssistantAnswer, AssistantPhrase, AssistantTopic
from seamline.core.config import Settings
from seamline.core.errors import Conflict, NotFound, Unprocessable
from seamline.inbox.models import InboxAgent

LANGUAGES = ("ru", "en")
#: Intents without settings (see the module's docstring), and why.
FIXED_TOPICS = {
    "human": "the bot always hands a request for a person over",
    "out_of_scope": "the bot never answers what is out of scope: it says it did not understand",
}
#: Longest business template (a chat message; Telegram's limit is 4096 characters).
MAX_TEMPLATE = 4000
#: The not-understood messages a period's figures list (service.stats keeps the newest 50).
UNKNOWN_LIMIT = 50

# The same sandbox as the bot's (service.py), to compile what it will render: `parse` alone
# does not see an unknown filter or test, which would fail at every answer.
_compiler = ImmutableSandboxedEnvironment(autoescape=False, trim_blocks=True)


# --- intents --------------------------------------------------------------------------------------


def check_intent(name: str) -> str:
    if name not in INTENTS:
        raise NotFound(f"No intent {name!r}", code="intent_not_found", details={"intent": name, "known": list(INTENTS)})
    return name


def intent_of(key: str) -> str | None:
    """The intent an answer key belongs to (`order_status.none` -> order_status); None for a step
    of the conversation (`identify`, `handover`, `not_understood`...)."""
    head = key.split(".", 1)[0]
    return head if head in INTENTS else None


def answer_keys(intent: str | None) -> list[str]:
    """The answer keys of an intent, in `ANSWERS`' order; of the conversation's steps for None."""
    return [key for key in ANSWERS if intent_of(key) == intent]


def phrase_counts(session: Session) -> dict[str, dict[str, dict[str, int]]]:
    """{intent: {"shipped": {"ru": n, "en": n}, "business": {"ru": n, "en": n}}}."""
    counts = {intent: {"shipped": dict.fromkeys(LANGUAGES, 0), "business": dict.fromkeys(LANGUAGES, 0)} for intent in INTENTS}
    for intent, by_lang in nlu.shipped_phrases().items():
        if intent in counts:
            for lang, texts in by_lang.items():
                counts[intent]["shipped"][lang] = len(texts)
    for intent, lang, count in session.execute(select(AssistantPhrase.intent, AssistantPhrase.lang, func.count())
                                               .group_by(AssistantPhrase.intent, AssistantPhrase.lang)):
        if intent in counts:
            counts[intent]["business"][lang] = counts[intent]["business"].get(lang, 0) + count
    return counts


def intents(session: Session, only: str | None = None) -> list[dict[str, Any]]:
    """Every intent (or one) with its settings, phrase counts and answers (read from the tables,
    not the bot's few-seconds cache of them: what was just saved is shown)."""
    topics = {row.intent: row for row in session.scalars(select(AssistantTopic))}
    counts = phrase_counts(session)
    names = [check_intent(only)] if only else list(INTENTS)
    custom = _custom_answers(session)
    found = []
    for name in names:
        intent = INTENTS[name]
        row = topics.get(name)
        found.append({
            "name": name, "names": dict(TOPIC_NAMES.get(name, {"ru": name, "en": name})), "personal": intent.personal,
            "configurable": name not in FIXED_TOPICS,
            "human_only": service.human_only(topics, name), "human_only_default": intent.human_only,
            "skill": row.skill if row is not None else None, "updated_at": row.updated_at if row is not None else None,
            "phrases": counts[name], "answers": [_answer(key, custom) for key in answer_keys(name)],
        })
    return found


def set_topic(session: Session, *, intent: str, human_only: bool, skill: str | None) -> dict[str, Any]:
    check_intent(intent)
    if intent in FIXED_TOPICS:
        raise Unprocessable(f"The intent {intent!r} has no settings: {FIXED_TOPICS[intent]}", code="topic_fixed",
                            details={"intent": intent})
    service.set_topic(session, intent=intent, human_only=human_only, skill=(skill or "").strip() or None)
    session.flush()
    return intents(session, intent)[0]


def known_skills(session: Session) -> list[str]:
    """The skills some agent has (a handover requiring another one waits in the queue for ever)."""
    skills: set[str] = set()
    for (listed,) in session.execute(select(InboxAgent.skills)):
        skills.update(s for s in listed or [] if isinstance(s, str))
    return sorted(skills)


# --- answers --------------------------------------------------------------------------------------


def check_key(key: str) -> str:
    if key not in ANSWERS:
        raise NotFound(f"No answer {key!r}", code="answer_not_found", details={"key": key})
    return key


def _custom_answers(session: Session) -> dict[tuple[str, str], AssistantAnswer]:
    return {(row.key, row.lang): row for row in session.scalars(select(AssistantAnswer))}


def _top_names(variables: list[str]) -> set[str]:
    return {v.split(".", 1)[0].split("[", 1)[0] for v in variables}


def unknown_variables(key: str, template: str) -> list[str]:
    """The names a template reads that the answer is not given (they print nothing)."""
    try:
        used = meta.find_undeclared_variables(_compiler.parse(template))
    except TemplateError:
        return []
    return sorted(used - _top_names(VARIABLES.get(key, [])))


def _answer(key: str, custom: dict[tuple[str, str], AssistantAnswer]) -> dict[str, Any]:
    languages = {}
    for lang in LANGUAGES:
        row = custom.get((key, lang))
        languages[lang] = {
            "default": ANSWERS[key][lang], "custom": row.template if row is not None else None,
            "template": row.template if row is not None else ANSWERS[key][lang],
            "updated_by": row.updated_by if row is not None else None, "updated_at": row.updated_at if row is not None else None,
            "unknown_variables": unknown_variables(key, row.template) if row is not None else [],
        }
    return {"key": key, "intent": intent_of(key), "variables": list(VARIABLES.get(key, [])), "languages": languages}


def answers(session: Session, keys: list[str] | None = None) -> list[dict[str, Any]]:
    """Every answer (or these), in `ANSWERS`' order."""
    custom = _custom_answers(session)
    return [_answer(key, custom) for key in (keys if keys is not None else list(ANSWERS))]


def check_template(key: str, lang: str, template: str) -> None:
    """Refuse a template the bot could not render: 422 `invalid_template` with the line and the
    parser's words."""
    if len(template) > MAX_TEMPLATE:
        raise Unprocessable(f"A template has at most {MAX_TEMPLATE} characters", code="template_too_long",
                            details={"key": key, "lang": lang, "max": MAX_TEMPLATE})
    try:
        service.check_template(template)
        _compiler.from_string(template)
    except TemplateError as exc:
        raise Unprocessable(f"The template does not parse: {exc.message or exc}", code="invalid_template",
                            details={"key": key, "lang": lang, "line": getattr(exc, "lineno", None),
                                     "problem": str(exc.message or exc)[:300]}) from None


def _check_lang(lang: str) -> str:
    if lang not in LANGUAGES:
        raise Unprocessable(f"Unknown language {lang!r}", code="invalid_language", details={"known": list(LANGUAGES)})
    return lang


def set_answer(session: Session, *, key: str, lang: str, template: str, by: str) -> dict[str, Any]:
    """The business's text for `key` in `lang`; the default's own text (or nothing) is the default."""
    check_key(key)
    _check_lang(lang)
    if not template.strip() or template.strip() == ANSWERS[key][lang].strip():
        return reset_answer(session, key=key, lang=lang)
    check_template(key, lang, template)
    service.set_answer(session, key=key, lang=lang, template=template, by=by[:200])
    session.flush()
    return answers(session, [key])[0]


def reset_answer(session: Session, *, key: str, lang: str) -> dict[str, Any]:
    check_key(key)
    _check_lang(lang)
    service.set_answer(session, key=key, lang=lang, template=None, by="")
    session.flush()
    return answers(session, [key])[0]


# --- phrases --------------------------------------------------------------------------------------


def phrase_rows(session: Session, *, intent: str | None = None, lang: str | None = None, before_id: int | None = None,
                limit: int = 50) -> list[AssistantPhrase]:
    """The business's phrases, newest first (`limit` rows: ask limit + 1 to know of a next page)."""
    query = select(AssistantPhrase).order_by(AssistantPhrase.id.desc()).limit(limit)
    if intent is not None:
        query = query.where(AssistantPhrase.intent == check_intent(intent))
    if lang is not None:
        query = query.where(AssistantPhrase.lang == _check_lang(lang))
    if before_id is not None:
        query = query.where(AssistantPhrase.id < before_id)
    return list(session.scalars(query))


def _same_words(text: str) -> str:
    return nlu.fold(text)


def find_phrase(session: Session, text: str) -> AssistantPhrase | None:
    """The business's phrase with these words (case and spacing aside), if any."""
    folded = _same_words(text)
    for row in session.scalars(select(AssistantPhrase).order_by(AssistantPhrase.id)):
        if _same_words(row.text) == folded:
            return row
    return None


def add_phrase(session: Session, *, intent: str, text: str, lang: str | None = None, by: str) -> tuple[AssistantPhrase, bool]:
    """(the phrase, whether it is new). The language is the text's own when not given."""
    check_intent(intent)
    words = " ".join(text.split())
    if not words or not _same_words(words):
        raise Unprocessable("A phrase needs words", code="empty_phrase")
    lang = _check_lang(lang) if lang else nlu.language(words)
    existing = find_phrase(session, words)
    if existing is not None:
        if existing.intent == intent:
            return existing, False
        raise Conflict(f"The phrase is an example of {existing.intent!r} already: delete it there first", code="phrase_exists",
                       details={"intent": existing.intent, "phrase_id": existing.id})
    return service.add_phrase(session, intent=intent, lang=lang, text=words, by=by[:200]), True


def delete_phrase(session: Session, phrase_id: int) -> AssistantPhrase:
    row = session.get(AssistantPhrase, phrase_id)
    if row is None:
        raise NotFound(f"No phrase {phrase_id}", code="phrase_not_found", details={"phrase_id": phrase_id})
    service.delete_phrase(session, phrase_id)
    return row


# --- trying a text --------------------------------------------------------------------------------


def classify(session: Session, *, settings: Settings, text: str) -> dict[str, Any]:
    """What the model makes of a text now, and what the bot would do with it as a first message:
    `answer`, `identify` (a personal topic: it asks who they are first), `not_understood` or
    `hand_over` (with the reason); `asks_llm` when it would first ask the LLM (service._ask_llm),
    `would` then being what it does when the LLM names no intent. Nothing is written."""
    prediction = service.model(session).predict(text)
    found = nlu.describe(prediction)
    intent, confidence = prediction.intent, prediction.confidence
    topics = service.topic_settings(session)
    reason = None
    if confidence < settings.assistant_unsure_confidence or intent == nlu.OUT_OF_SCOPE:
        would = "not_understood"
    elif confidence < settings.assistant_confidence:
        would, reason = "hand_over", "low_confidence"
    elif intent == "human":
        would, reason = "hand_over", "requested"
    elif service.human_only(topics, intent):
        would, reason = "hand_over", "human_only"
    elif INTENTS[intent].personal:
        would = "identify"
    else:
        would = "answer"
    return {**found, "would": would, "reason": reason, "asks_llm": llm.wanted(settings, prediction), "thresholds": {
        "confident": settings.assistant_confidence, "unsure": settings.assistant_unsure_confidence}}


# --- the figures of a period ---------------------------------------------------------------------


def stats(session: Session, *, since: datetime, until: datetime) -> dict[str, Any]:
    return service.stats(session, since=since, until=until)


def unknown_phrases(session: Session, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages the bot did not understand (service.stats' `not_understood`), the same words
    once with how many times they came, each with the intent the current model picks (its best
    intent that is not out of scope: the console's suggestion) and the intent it is an example
    of already, if the business added it."""
    grouped: dict[str, dict[str, Any]] = {}
    for item in items:
        text = " ".join((item.get("text") or "").split())
        folded = _same_words(text)
        if not folded:
            continue
        found = grouped.get(folded)
        if found is None:
            grouped[folded] = {"text": text, "count": 1, "at": item.get("at"), "conversation_id": item.get("conversation_id"),
                               "confidence": item.get("confidence")}
        else:
            found["count"] += 1
    if not grouped:
        return []
    model = service.model(session)
    business = {_same_words(row.text): row.intent for row in session.scalars(select(AssistantPhrase))}
    result = []
    for folded, item in grouped.items():
        prediction = model.predict(item["text"])
        ranked = [(prediction.intent, prediction.confidence), *prediction.alternatives]
        suggestion = next((i for i, _p in ranked if i != nlu.OUT_OF_SCOPE), None)
        result.append({**item, "lang": prediction.lang, "suggestion": suggestion, "added_to": business.get(folded)})
    return result

