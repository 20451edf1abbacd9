"""Rendering a template (marketing/messages/render.py): the sandbox lets a template read its
context and call its filters, nothing else, and bounds what one rendering may cost (a loop gone
wrong, or one written to hurt, must not hold a worker or fill its memory)."""

from __future__ import annotations

import time

import pytest

from seamline.core.errors import Unprocessable
from seamline.marketing.messages import render


def text(source: str, **context) -> str:
    return render.render({"ru": {"text": source}}, context, locale="ru").text


def test_filters_speak_the_language_and_a_missing_value_is_listed():
    rendered = render.render({"ru": {"text": "{{ person.first_name }}: {{ 123456|money('RUB') }}, {{ coupon.code }}",
                                     "url": "{{ cart.url }}"}}, {"person": {"first_name": "Анна"}, "cart": {"url": "https://shop.example/cart"}},
                             locale="ru")
    assert rendered.text == "Анна: 1\xa0234,56\xa0₽, " and rendered.missing == ["coupon"]
    assert rendered.url == "https://shop.example/cart"
    assert render.render({"ru": {"text": "x", "url": "javascript:alert(1)"}}, {}, locale="ru").url is None  # http(s) only


@pytest.mark.parametrize("source", ["{{ ''.__class__.__mro__[1].__subclasses__() }}", "{% set x = person.update({'a': 1}) %}"])
def test_python_internals_and_mutation_are_refused(source):
    with pytest.raises(Unprocessable) as refused:
        text(source, person={})
    assert refused.value.code == "template_render_failed"
    assert text("{{ person.__init__.__globals__ }}{{ person.items.__self__ }}", person={"a": 1}) == ""  # unsafe names read as nothing


@pytest.mark.parametrize("source", [
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",  # 10^10 steps, no output
    "{{ range(10**7)|list|length }}",
    "{{ ('a' * 100000000)|length }}",
    "{{ 99999 ** 99999 }}",
    "{{ 'a'.center(1000000000) }}",
    "{{ 'x'|center(999999999) }}",
    "{{ '%1000000000d'|format(1) }}",
    "{{ '%1000000000d' % 1 }}",
    "{{ '{:>1000000000}'.format(1) }}",
    "{{ '{0:>999999}'['format'](1) }}",
    "{{ ('a' * 100000)|replace('a', 'b' * 100000)|length }}",
    "{{ ('a' * 100000).replace('a', 'b' * 100000)|length }}",
])
def test_what_would_cost_too_much_is_refused_at_once(source):
    started = time.monotonic()
    with pytest.raises(Unprocessable) as refused:
        text(source)
    assert refused.value.code in ("template_too_costly", "template_render_failed"), refused.value
    assert time.monotonic() - started < 2


def test_ordinary_loops_powers_and_formats_still_work():
    assert text("{% for i in range(3) %}{{ i }}{% endfor %} {{ 2 ** 10 }} {{ 'ab' * 3 }} {{ '%05.2f'|format(3.14159) }} "
                "{{ '{:>4}'.format(7) }} {{ 'Анна'|replace('А', 'Я') }} {{ 'ab'|center(6) }}|") == "012 1024 ababab 03.14    7 Янна   ab  |"
    # loops of 300 x 300 lines are 90,000 steps: under the budget
    assert len(text("{% for i in range(300) %}{% for j in range(300) %}{% endfor %}{% endfor %}ok")) == 2
