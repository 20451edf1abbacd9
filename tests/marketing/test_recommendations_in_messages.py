"""Recommendations in marketing messages: a template's `recommendations` are the person's "for
you" products in their language, in stock, never what they just bought, each linking to the
shop's product page as a recommendation; the click redirect adds the channel the message went on,
so analytics counts what the recommendation sold per channel."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from seamline.marketing.messages import service as messages
from seamline.marketing.messages import tracking
from tests.recommendations.conftest import reco_settings, train, world  # noqa: F401 - fixtures

TEMPLATE = {"ru": {"text": "{% for p in recommendations %}{{ p.name }}|{{ p.url }}\n{% endfor %}"},
            "en": {"text": "{% for p in recommendations %}{{ p.name }}|{{ p.url }}\n{% endfor %}"}}


def test_a_template_lists_the_persons_picks_with_tracked_links(database, reco_settings, world):  # noqa: F811
    world.shoppers()
    buyer = world.person()
    world.order(buyer, ["serum"], days_ago=5)
    train(world, reco_settings)
    with database.write() as session:
        template, _new = messages.create_template(session, name="Picks", content=TEMPLATE, created_by="test")
    for locale, serum_name in (("ru", "serum"), ("en", "Serum")):
        with database.read() as session:
            rendered = messages.preview(session, settings=reco_settings, template=template, profile_id=buyer, locale=locale)
        lines = [line.split("|") for line in rendered.text.strip().splitlines()]
        assert lines and len(lines) <= messages.TEMPLATE_RECOMMENDATIONS, rendered.text
        names = [name for name, _url in lines]
        assert serum_name not in names  # bought five days ago, not consumable
        assert "mask" not in {n.lower() for n in names}  # out of stock everywhere
        if locale == "ru":
            assert "toner" in names  # bought together with the serum by people like them
        else:
            assert "Toner" in names
        for _name, url in lines:
            parts = urlsplit(url)
            query = parse_qs(parts.query)
            assert parts.path.startswith("/shop/p/") and query["rec"][0] in ("for_you", "popular_in_store", "popular")
            assert int(query["rec_pos"][0]) >= 1 and int(query["rec_v"][0]) >= 1


def test_the_click_redirect_says_which_channel_showed_it():
    link = "http://127.0.0.1:8000/shop/p/toner?rec=for_you&rec_pos=1&rec_v=3"
    assert tracking.landing_url(link, "email") == link + "&rec_channel=email"
    assert tracking.landing_url(link + "&rec_channel=telegram", "email") == link + "&rec_channel=telegram"  # already said
    assert tracking.landing_url("https://shop.example/new?x=1", "email") == "https://shop.example/new?x=1"  # not a recommendation
    assert tracking.landing_url(link, None) == link  # a test send: no message, no channel
