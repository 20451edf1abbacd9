"""parse_email on hand-written samples of real clients' mail, and on garbage."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seamline.channels.email.mime import (
    MalformedEmail,
    html_to_text,
    parse_email,
    strip_quoted,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "email"


def load(name: str):
    return parse_email((FIXTURES / name).read_bytes())


def test_koi8r_plain():
    mail = load("koi8r_plain.eml")
    assert mail.from_address == "ivan.petrov@example.ru" and mail.from_name == "Иван Петров"
    assert mail.subject == "Где мой заказ 1042?"
    assert mail.message_id == "1187654321.20261123091455@example.ru"
    assert mail.date == datetime(2026, 11, 23, 6, 14, 55, tzinfo=timezone.utc)
    assert mail.text == mail.full_text == (
        "Здравствуйте!\n\nЗаказ 1042 оформлен 15 ноября, но до сих пор не отправлен.\n"
        "Подскажите, пожалуйста, когда ждать доставку?\n\nС уважением,\nИван"
    )
    assert mail.to == ["support@shop.example"] and mail.html is None and mail.problems == []


def test_cp1251_quoted_printable_with_encoded_word_subject():
    mail = load("cp1251_qp.eml")
    assert mail.subject == "Возврат товара «Чайник»"
    assert mail.from_name == "Ольга Смирнова" and mail.from_address == "olga.smirnova@example.com"
    assert mail.text == (
        "Добрый день!\n\nПрошу вернуть деньги за товар «Чайник электрический», артикул ЧЭ-2000.\n"
        "Чек прилагать не буду — оплата была картой.\n\nСпасибо."
    )
    assert mail.message_id == "000801db3e5a$1c2d3e40$0a00a8c0@olgapc" and mail.problems == []


def test_utf8_base64():
    mail = load("utf8_base64.eml")
    assert mail.subject == "Смена адреса доставки" and mail.from_name == "Мария"
    assert mail.text == "Привет! Хочу поменять адрес доставки на ул. Ленина, д. 5, кв. 12.\nЗаранее благодарю 🙂"
    assert mail.to == ["support@shop.example", "delivery@shop.example"]


def test_gmail_reply_quote_stripped_in_plain_and_html():
    mail = load("gmail_reply.eml")
    assert mail.text == "Да, адрес правильный. Спасибо!"
    assert "> Здравствуйте! Подтвердите, пожалуйста, адрес доставки." in mail.full_text
    assert mail.in_reply_to == "support.4711@shop.example" and mail.subject == "Re: Подтвердите адрес"
    assert 'class="gmail_quote' in mail.html
    assert html_to_text(mail.html, drop_quotes=True) == "Да, адрес правильный. Спасибо!"
    assert "Подтвердите" in html_to_text(mail.html)


def test_outlook_replies():
    mail = load("outlook_reply.eml")
    assert mail.text == "Hi,\n\nPlease send the invoice to accounts@corp.example instead.\n\nRegards,\nJohn"
    assert mail.from_name == "Smith, John" and mail.from_address == "john.smith@corp.example"
    assert "-----Original Message-----" in mail.full_text

    ru = load("outlook_ru_reply.eml")  # no separator phrase: a rule, then "От: … Отправлено: …"
    assert ru.text == "Добрый день, Анна!\n\nСчёт получили, оплатим в пятницу."
    assert ru.subject == "RE: Счёт №118" and ru.from_name == "Бухгалтерия ООО Ромашка"


def test_thunderbird_russian_reply_flowed_with_signature():
    mail = load("thunderbird_ru_reply.eml")
    assert mail.text == "Анна, добрый день!\n\nДа, забираю заказ сам из пункта выдачи на Тверской, завтра после обеда."
    assert "23.11.2026, 10:00, Анна пишет:" in mail.full_text and "Сергей Волков" in mail.full_text
    assert mail.subject == "Re: Самовывоз" and mail.from_name == "Сергей Волков"
    assert mail.in_reply_to == "support.5001@shop.example"


def test_yandex_reply():
    mail = load("yandex_reply.eml")
    assert mail.text == "Спасибо, получила."
    assert mail.from_name == "Елена" and mail.subject == "Re: Заказ передан в доставку"


def test_html_only_derives_text():
    mail = load("html_only.eml")
    assert mail.text == mail.full_text == (
        "Новая заявка с сайта:\n\nИмя: Пётр\nТелефон: +7 900 111-22-33\nВопрос: «Есть ли размер XL?» & цвет\n\nГород Казань"
    )
    assert mail.html.startswith("<!DOCTYPE html>") and "alert" not in mail.text


def test_attachments_and_inline_image():
    mail = load("attachments.eml")
    assert mail.text == "Акт во вложении, логотип ниже." and 'src="cid:logo@example.com"' in mail.html
    logo, pdf, csv = mail.attachments
    assert (logo.filename, logo.content_type, logo.inline, logo.content_id) == ("logo.png", "image/png", True, "logo@example.com")
    assert logo.data == (FIXTURES / "logo.png").read_bytes()
    assert (pdf.filename, pdf.content_type, pdf.inline) == ("Акт сверки.pdf", "application/pdf", False)
    assert pdf.data == (FIXTURES / "attachment.pdf").read_bytes()
    assert (csv.filename, csv.content_type) == ("Счета.csv", "text/csv")  # RFC 2047 name, as Outlook writes
    assert csv.data.decode("cp1251") == "№;Сумма\r\n118;1500\r\n"
    assert mail.problems == []


def test_broken_multipart_without_boundary():
    mail = load("broken_multipart.eml")
    assert mail.text == "Тикет 77: клиент просит перезвонить."
    assert mail.html == "<p>Тикет 77: клиент просит перезвонить.</p>"
    assert mail.problems == ["broken multipart: no boundary"]


def test_multipart_with_wrong_boundary_or_no_parts_still_gives_text():
    raw = (b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=\"declared\"\r\n\r\n"
           b"--actual\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xd0\x94\xd0\xb0\r\n--actual--\r\n")
    mail = parse_email(raw)
    assert mail.text == "Да" and mail.problems[-1] == "broken multipart: boundary 'declared' not found"
    bare = parse_email(b"From: a@example.com\r\nContent-Type: multipart/mixed\r\n\r\njust text\r\n")
    assert bare.text == "just text" and bare.problems[-1] == "broken multipart: no boundary"


def test_bogus_charset_falls_back_with_notes():
    mail = load("bogus_charset.eml")
    assert mail.text == "Можно ли оплатить заказ при получении?"  # the bytes are cp1251
    assert mail.subject == "Вопрос по оплате"  # the encoded word's bytes are UTF-8
    assert mail.problems == [
        "unknown charset x-unknown-charset in text/plain decoded as cp1251",
        "unknown charset x-unknown-charset in subject header decoded as utf-8",
    ]


def test_missing_message_id_is_generated_deterministically():
    raw = (FIXTURES / "no_message_id.eml").read_bytes()
    first, again = parse_email(raw), parse_email(raw)
    assert first.message_id == again.message_id
    assert first.message_id.startswith("generated-") and first.message_id.endswith("@seamline")
    assert len(first.message_id) == len("generated-@seamline") + 32
    assert parse_email(raw + b"x").message_id != first.message_id
    assert first.problems == ["no Message-ID: generated one from the message's bytes"]
    assert first.text == "Scanned document from office printer." and first.from_name is None


def test_threading_headers():
    mail = load("threaded_reply.eml")
    assert mail.message_id == "reply-3@example.com" and mail.in_reply_to == "support.1042.2@shop.example"
    assert mail.references == ["original-1@example.com", "support.1042.1@shop.example", "support.1042.2@shop.example"]
    assert mail.subject == "Re: Re: Заказ 1042" and mail.text == "Получил, спасибо!"


def test_raw_8bit_headers_and_bad_dates():
    raw = ("From: Пётр <petr@example.com>\r\nSubject: Счёт\r\nDate: someday\r\n\r\nТело\r\n").encode("cp1251")
    mail = parse_email(raw)
    assert (mail.from_name, mail.subject, mail.text, mail.date) == ("Пётр", "Счёт", "Тело", None)
    assert "8-bit from header without a charset decoded as cp1251" in mail.problems
    assert any(p.startswith("unparseable Date header") for p in mail.problems)
    utf8 = parse_email("From: Пётр <petr@example.com>\r\nSubject: Счёт\r\n\r\nТело\r\n".encode())
    assert (utf8.subject, utf8.text) == ("Счёт", "Тело")
    assert not any("8-bit" in p for p in utf8.problems)  # raw UTF-8 (RFC 6532) is no problem


@pytest.mark.parametrize("raw", [b"", b"   \r\n", b"Subject: hi\r\n\r\nno sender", b"\x00\xff garbage", b"From: nobody\r\n\r\n"])
def test_no_sender_is_malformed(raw):
    with pytest.raises(MalformedEmail):
        parse_email(raw)


@pytest.mark.parametrize(("text", "new"), [
    ("Thanks!\n\nOn Tue, 24 Nov 2026 at 09:00, Shop <support@shop.example> wrote:\n> old", "Thanks!"),
    ("Thanks!\nOn Tue, 24 Nov 2026 at 09:00, Very Long Name\n<support@shop.example> wrote:\n> old", "Thanks!"),
    ("Ок\n\n24.11.2026 09:00, Анна Петрова написал(а):\n> старое", "Ок"),
    ("Ок\n\n-----Исходное сообщение-----\nОт: Анна\nОтправлено: 24 ноября\n\nстарое", "Ок"),
    ("Ок\n\nFrom: Shop <support@shop.example>\nSent: Tuesday\nTo: me\n\nold", "Ок"),
    ("Ок\n\nпн, 23 нояб. 2026 г. в 10:00, Магазин <support@shop.example>:\n\n> старое", "Ок"),
    ("Sure.\n\nSent from my iPhone", "Sure."),
    ("Answer one\n> question one\nAnswer two\n\n> trailing\n>\n> quote\n", "Answer one\n> question one\nAnswer two"),
    ("Вот что он мне пишет: приезжайте завтра.", "Вот что он мне пишет: приезжайте завтра."),
    ("> only a quote\n> nothing new", "> only a quote\n> nothing new"),  # would be empty: keep all
    ("Text\n-- \nsig", "Text"),
])
def test_strip_quoted(text, new):
    assert strip_quoted(text) == new


_FROM = b"From: a@example.com\r\n"


@settings(max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise_anything_but_malformed(raw):
    try:
        mail = parse_email(raw)
    except MalformedEmail:
        return
    assert mail.from_address
    assert parse_email(_FROM + raw).from_address  # with a sender it always parses


_SAMPLES = sorted(p.read_bytes() for p in FIXTURES.glob("*.eml"))


@settings(max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(_SAMPLES), st.lists(st.tuples(st.integers(0, 4000), st.binary(max_size=8)), max_size=6),
       st.integers(0, 4000))
def test_corrupted_real_mail_never_raises(sample, edits, cut):
    raw = bytearray(_FROM + sample)
    for position, junk in edits:
        raw[position:position + len(junk)] = junk
    for data in (bytes(raw), bytes(raw[:cut])):
        try:
            parse_email(data)
        except MalformedEmail:
            pass
