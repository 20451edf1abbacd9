"""Every string the console shows has a Russian translation (the product speaks RU and EN)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from jinja2.ext import babel_extract

from seamline.web import i18n
from seamline.web.console import labels

CONSOLE = Path(i18n.__file__).parent / "console"
OPTIONS = {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}


def _console_msgids() -> set[tuple[str, str]]:
    found = set()
    for template in (CONSOLE / "templates").rglob("*.html"):
        with template.open("rb") as fh:
            for _line, _func, message, _comments in babel_extract(fh, ("_", "gettext", "ngettext"), [], OPTIONS):
                for msgid in ([message] if isinstance(message, str) else [m for m in (message or ())[:1] if m]):
                    found.add((template.name, msgid))
    for module in PYTHON_MODULES():
        text = module.read_text()
        for match in re.finditer(r'(?:translate\(\s*request,\s*|\bt\()"([^"]+)"', text):
            found.add((module.name, match.group(1)))
    return found


def PYTHON_MODULES() -> list[Path]:  # noqa: N802
    """The console's Python that builds sentences: pages, actions, the marketing area's words."""
    return [*(CONSOLE / "pages").glob("*.py"), CONSOLE / "actions.py", CONSOLE / "marketing_words.py"]


def _plural_msgids() -> set[tuple[str, str, str]]:
    """(file, singular, plural) of every `n("...", "...", count)` (marketing_words.Words.n)."""
    found = set()
    for module in PYTHON_MODULES():
        for match in re.finditer(r'\bn\(\s*"([^"]+)",\s*"([^"]+)"', module.read_text()):
            found.add((module.name, match.group(1), match.group(2)))
    return found


def test_every_console_string_has_a_russian_translation():
    catalog = i18n.translations("ru")._catalog  # noqa: SLF001 - gettext's own mapping
    missing = sorted(f"{where}: {msgid}" for where, msgid in _console_msgids() if msgid not in catalog)
    # a plural's three Russian forms (1 день, 2 дня, 5 дней), each with the English placeholders
    for where, singular, plural in sorted(_plural_msgids()):
        forms = [catalog.get((singular, i)) for i in range(3)]
        if not all(forms):
            missing.append(f"{where}: {singular} / {plural} (msgid_plural, three msgstr forms)")
        elif any(_placeholders(f) != _placeholders(singular) for f in forms):
            missing.append(f"{where}: {singular}: a Russian form's params differ")
    assert _plural_msgids(), "the plural pattern found nothing: the test reads the wrong files"
    assert not missing, "add these to web/locale/ru/LC_MESSAGES/<area>.po:\n" + "\n".join(missing)


def test_locale_formats():
    ru, en = i18n.Formats("ru"), i18n.Formats("en")
    assert ru.money(129990, "RUB").replace("\xa0", " ") == "1 299,90 ₽"
    assert en.money(129990, "RUB") == "1,299.90\xa0RUB" and en.money(500, "USD") == "$5.00"
    assert ru.phone("+79161234567") == "+7 916 123-45-67"
    assert i18n.pick_locale(None, "en-GB,en;q=0.9") == "en" and i18n.pick_locale(None, "de-DE") == "ru"


# --- what is built in Python: codes, timeline titles, system messages (web/console/labels.py) ------


def _placeholders(text: str) -> list[str]:
    return sorted(re.findall(r"%\([a-z_]+\)[-+ 0#]*\d*[sdif]", text))


def test_every_code_label_has_a_russian_translation():
    catalog = i18n.translations("ru")._catalog  # noqa: SLF001
    missing = sorted(f'msgctxt "{vocabulary}" msgid "{english}"' for vocabulary, names in labels.VOCABULARIES.items()
                     for english in names.values() if f"{vocabulary}\x04{english}" not in catalog)
    assert not missing, "add these to web/locale/ru/LC_MESSAGES/labels.po:\n" + "\n".join(missing)


def test_the_console_has_a_name_for_every_code_the_modules_use():
    """A new status, channel or identifier type fails here until the console can name it."""
    from seamline import runtime

    runtime.wire()  # every payment provider registered
    from seamline.commerce.payment_providers import PROVIDERS
    from seamline.core.config import BUILTIN_IDENTIFIER_TYPES, Settings
    from seamline.inbox.service import STATUSES as CONVERSATION_STATUSES
    from seamline.loyalty.service import TITLES as LOYALTY_TITLES
    from seamline.web.console.pages.commerce import FULFILMENTS, STATUSES

    defaults = Settings(_env_file=None)
    used = {
        "order_status": {*STATUSES, "partially_returned"}, "fulfilment": set(FULFILMENTS), "payment_method": set(PROVIDERS),
        "conversation_status": set(CONVERSATION_STATUSES), "identifier_type": set(BUILTIN_IDENTIFIER_TYPES),
        "channel": set(defaults.consent_channels), "consent_purpose": set(defaults.consent_purposes),
        "loyalty_entry": {key.split(".")[1] for key in LOYALTY_TITLES},
        **_marketing_codes(),
    }
    unnamed = sorted(f"{vocabulary}: {code}" for vocabulary, codes in used.items() for code in codes - set(labels.VOCABULARIES[vocabulary]))
    assert not unnamed, "name these in web/console/labels.py VOCABULARIES:\n" + "\n".join(unnamed)


def _marketing_codes() -> dict[str, set[str]]:
    """The codes marketing keeps that the console names: statuses, kinds of steps and triggers
    (from the definition's own models), exit reasons, why a message was skipped."""
    import typing

    from seamline.marketing.journeys import definition, service

    def tags(union: object) -> set[str]:
        members = typing.get_args(typing.get_args(union)[0])
        return {typing.get_args(m.model_fields["type"].annotation)[0] for m in members}

    return {
        "journey_status": {"draft", *(target for _allowed, target in service.STATUS_MOVES.values())},
        "campaign_status": {"draft", "scheduled", "sending", "testing", "sent", "cancelled"},  # campaigns/models.py
        "step_kind": tags(definition.Step), "trigger_kind": tags(definition.Trigger),
        "exit_reason": {"completed", "goal", "segment_exit", "archived", "merged", "erased", "holdout", "error"},
        "send_reason": {"capped", "journey_capped", "no_marketing_consent", "customer_unreachable", "consent_withdrawn",
                        "quiet_hours", "channel_not_configured"},
        "message_status": {"queued", "skipped", "held", "test"},
    }


def test_every_text_built_in_python_has_a_russian_template(tmp_path):
    """Every timeline title a module registers and every inbox system message, with the same params."""
    from seamline.app import create_app
    from seamline.core.config import Settings
    from seamline.inbox.service import SYSTEM_TEXTS

    app = create_app(Settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'seamline.db'}"))
    titles = app.state.customer_timeline.titles
    assert {key.split(".")[0] for key in titles} >= {"order", "return", "cart", "loyalty", "event", "inbox"}
    ru = i18n.translations("ru")
    problems = []
    for key, english in {**titles, **SYSTEM_TEXTS}.items():
        russian = ru.gettext(english)
        if russian == english and any(c.isalpha() for c in re.sub(r"%\([a-z_]+\)[-+]?\w", "", english)):
            problems.append(f"{key}: no translation of {english!r}")
        elif _placeholders(russian) != _placeholders(english):
            problems.append(f"{key}: {russian!r} does not have the params of {english!r}")
    assert not problems, "fix web/locale/ru/LC_MESSAGES/labels.po:\n" + "\n".join(problems)


def test_a_built_text_reads_in_each_language():
    from seamline.customers.timeline import TimelineItem
    from seamline.inbox.service import SYSTEM_TEXTS, system_text

    places = {"msk-city": ("Москва-Сити", "Moscow City")}
    templates = {"return.accepted": "Return of order %(order_id)s at %(location)s", **SYSTEM_TEXTS}
    ru = labels.Labels("ru", places=lambda: places, templates=templates)
    en = labels.Labels("en", places=lambda: places, templates=templates)
    item = {"title": "Return of order 7 at msk-city", "title_key": "return.accepted", "params": {"order_id": 7, "location": "msk-city"}}
    assert ru.timeline(item) == "Возврат по заказу 7: Москва-Сити" and en.timeline(item) == "Return of order 7 at Moscow City"
    own_words = TimelineItem(kind="inbox", id=1, occurred_at=None, channel="telegram", type="inbox.message_received",  # type: ignore[arg-type]
                             title="Where is my order?")
    assert ru.timeline(own_words) == "Where is my order?"
    breach = {"kind": "event", "text": system_text("conversation.sla_breached", {"clocks": ["first_response"]}),
              "meta": {"text_key": "conversation.sla_breached", "text_params": {"clocks": ["first_response"]}}}
    assert breach["text"] == "SLA breached: first response"
    assert ru.system(breach) == "Нарушен SLA: время первого ответа" and en.system(breach) == "SLA breached: first response"
    # a row written before keys existed (or by code that passes none) is recognised by its English text
    assert ru.system({"kind": "event", "text": "SLA breached: first response, resolution", "meta": {}}) == \
        "Нарушен SLA: время первого ответа, время решения"
    assert ru.system({"kind": "event", "text": "Transferred to team Возвраты: сегодня", "meta": {}}) == "Передан группе «Возвраты»: сегодня"
    assert ru.system({"kind": "event", "text": "Перезвонили клиенту", "meta": {}}) == "Перезвонили клиенту"
    assert ru.system({"kind": "message", "text": "Status: open", "meta": {}}) == "Status: open"  # a person's words
    assert ru.order_status("completed") == "Выполнен" and ru.payment_status("failed") == "Ошибка"
    assert ru.source("store:msk-city") == "Москва-Сити" and ru.source("web") == "Сайт" and ru.channel("brand-new") == "brand-new"
    assert ru.reference("order:7") == "Заказ #7" and ru.reference("campaign:spring") == "Акция spring" and ru.reference("x:1") == "x:1"
    assert ru.trait_value("locale", "en") == "английский" and ru.trait_value("preferred_store", "store:msk-city") == "Москва-Сити"


#: What must not be read on a Russian page: the modules' codes and English words, and the
#: beginnings of their English texts. (Customers' own words are Russian in the pages read below.)
def _english_on_russian_pages() -> list[re.Pattern[str]]:
    ru = labels.Labels("ru")
    # references ("order:7") are words of content too (the demo's English canned responses: "Order status"),
    # and so are the codes of journey steps and triggers ("wait", "send", "event", "date")
    vocabularies = {name: names for name, names in labels.VOCABULARIES.items()
                    if name not in ("reference", "step_kind", "trigger_kind")}
    words = {english for vocabulary, names in vocabularies.items() for english in names.values()
             if ru(vocabulary, next(code for code, e in names.items() if e == english)) != english}
    codes = {code for names in vocabularies.values() for code in names if code.islower() or "_" in code}
    texts = ["Points ", "Order \\d+:", "Return of order", "Status: ", "Transferred to", "Added to the cart",
             "Profile updated", "store:", "(attachment)", f"\\b(?:{'|'.join(labels.VOCABULARIES['reference'])}):\\S"]
    return ([re.compile(rf"(?<![\w@.-]){re.escape(w)}(?![\w@-])") for w in sorted(words | codes)]
            + [re.compile(t if "\\" in t else re.escape(t)) for t in texts])


def _visible_text(html: str) -> str:
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "\n", html)).replace("&amp;", "&")


@pytest.fixture
def world(settings, database):
    if not database.is_sqlite:
        pytest.skip("the words do not depend on the database; the demo fills in 3 s on SQLite")
    from seamline.demo import fill_demo

    return fill_demo(settings, customers=30)


def test_a_russian_speaker_reads_the_demo_world_in_russian(client, database, world, staff_client):
    """The 360, its timeline, an order and a conversation of the demo, after a few more things
    happened (a cart, events, a transfer, a resolution): no code and no English the modules wrote."""
    import base64

    from seamline.events import service as events_service

    api = {"Authorization": f"Bearer {world['admin_key']}"}
    anna = client.get("/v1/customers/lookup", params={"phone": "+79161234567"}, headers=api).json()
    user_id = next(i["value"] for i in anna["sections"]["identities"] if i["type"] == "user_id")
    with database.write() as session:
        key = events_service.create_source(session, name="Backend", channel="server", server_side=True)[1]
    basic = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    for kind, body in (("track", {"event": "Product Viewed", "properties": {"sku": "CREAM-50"}}), ("identify", {"traits": {"city": "Москва"}})):
        assert client.post(f"/v1/{kind}", json={"userId": user_id, **body}, headers=basic).status_code == 200
    assert client.app.state.event_writer.wait_idle()
    for quantity in (1, 2):
        put = client.put("/v1/carts/current/lines/CREAM-50", params={"customer_id": anna["id"]},
                         json={"quantity": quantity, "channel": "web"}, headers=api)
        assert put.status_code == 200, put.text
    order_id = next(o["id"] for o in anna["sections"]["orders"])
    conversation_id = next(c["id"] for c in anna["sections"]["conversations"])

    csrf = staff_client("admin", locale="ru")
    hx = {"X-CSRF-Token": csrf, "HX-Request": "true"}
    team = re.search(r'value="(team:\d+)"', client.get(f"/console/inbox/{conversation_id}").text).group(1)
    assert client.post(f"/console/inbox/{conversation_id}/transfer", data={"to": team, "note": "Возврат"}, headers=hx).status_code == 200
    assert client.post(f"/console/inbox/{conversation_id}/status", data={"status": "resolved"}, headers=hx).status_code == 200

    leaks = _english_on_russian_pages()
    pages = [f"/console/customers/{anna['id']}", f"/console/orders/{order_id}", f"/console/inbox/{conversation_id}?view=resolved",
             f"/console/loyalty/customers/{anna['id']}", "/console/orders", "/console/inbox?view=open"]
    found = {}
    for url in pages:
        page = client.get(url)
        assert page.status_code == 200, url
        # An order status's note is the API caller's free text, and some of commerce's own notes
        # ("paid: test") are English still: not checked here.
        text = _visible_text(re.sub(r'<div[^>]*data-test="order-note">.*?</div>', "", page.text))
        found[url] = sorted({m.group(0) for pattern in leaks for m in pattern.finditer(text)})
    assert not any(found.values()), found
    customer = _visible_text(client.get(f"/console/customers/{anna['id']}").text)
    # the timeline in Russian: order, return (with the store's name), points, cart, events; the thread's system messages
    for title in ("Заказ 1: выполнен", "Возврат по заказу 1: Москва, Тверская", "Начислено баллов: +", "Добавлено в корзину: CREAM-50 × 1",
                  "Количество CREAM-50 в корзине: 1 → 2", "Просмотр товара", "Профиль обновлён", "Любимый магазин"):
        assert title in customer, title
    thread = _visible_text(client.get(f"/console/inbox/{conversation_id}/thread").text)
    assert "Передан группе" in thread and "Статус: решён" in thread
