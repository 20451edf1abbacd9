"""Demo data: Russian and English customers of a retailer with stores, a website, an app and a
Telegram bot, each person known under several identifiers that arrive the way they do in life.

A person's story is a list of profile upserts, sent through the real service (identity
resolution, merge rules, latest-wins traits, consents), never written as rows by hand:

- a web visit leaves an `anonymous_id` cookie, and a later sign-up links it to `user_id` and
  `email` (and sometimes the phone);
- at the till the clerk types the phone as the customer says it, `8 (916) 123-45-67`, and scans
  the loyalty card; the app login (`+79161234567`) or the Telegram bot's contact
  (`79161234567`) later says it is the same person, and the profiles merge;
- a POS that was offline sends a visit days late: its older traits do not overwrite newer ones.

Deliberate edge cases, so the staff console has something to show:
- a clerk types the placeholder `test@test.com` for customers who would not give an email: it
  is blocked by the default merge rules, so these strangers are not merged;
- a website release sent `anonymous_id = "undefined"` for one login: blocked too;
- a married couple share the family laptop: the wife logs in on the cookie her husband's account
  already holds, which would put two `user_id`s in one profile: an identity conflict for review.

Everything comes from seeded `random.Random`s, one per person, so the same seed gives the same
people (only the timestamps move with `now`) and a demo of 30 is the first 30 of a demo of 200.
Nothing here touches the network or needs a package beyond the service's own. Stores are `source` values for now; `STORES` is meant to be reused
by the commerce module's locations.
"""

from __future__ import annotations

import base64
import json
import os
import random
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import phonenumbers
from sqlalchemy import create_engine, func, inspect, select, text

from seamline import runtime
from seamline.core.auth.schemas import Scope
from seamline.core.auth.service import create_api_key
from seamline.core.config import Settings
from seamline.core.db import Database, normalize_url
from seamline.core.migrations import describe, sqlite_path
from seamline.core.time import utcnow
from seamline.customers.identifiers import IdentifierRules
from seamline.customers.models import (
    CustomerConflict,
    CustomerIdentity,
    CustomerProfile,
)
from seamline.customers.schemas import ConsentIn, CustomerUpsert, IdentifierIn
from seamline.customers.service import upsert_customer

DEFAULT_SEED = 20261123
#: What a clerk types when the customer will not give an email (blocked by the default rules).
PLACEHOLDER_EMAIL = "test@test.com"
#: What a broken web SDK release sent as the cookie id (blocked by the default rules).
BROKEN_ANONYMOUS_ID = "undefined"


@dataclass(frozen=True)
class Store:
    """A point of sale or an online channel: `code` is the `source` of what happens there."""

    code: str
    name: str
    name_en: str
    kind: str  # "store" (a shop with a till) or "online"
    city: str | None = None
    address: str | None = None
    phone: str | None = None  # the shop's shared phone: identifies no customer
    timezone: str = "Europe/Moscow"


STORES: tuple[Store, ...] = (
    Store("store:msk-tverskaya", "Москва, Тверская", "Moscow, Tverskaya", "store", "Москва",
          "ул. Тверская, д. 15", "+7 495 150-01-01"),
    Store("store:msk-city", "Москва-Сити", "Moscow City", "store", "Москва",
          "Пресненская наб., д. 2, ТЦ «Афимолл Сити»", "+7 495 150-01-02"),
    Store("store:spb-nevsky", "Санкт-Петербург, Невский", "Saint Petersburg, Nevsky", "store", "Санкт-Петербург",
          "Невский пр-т, д. 48", "+7 812 240-01-03"),
    Store("store:kzn-baumana", "Казань, Баумана", "Kazan, Baumana", "store", "Казань",
          "ул. Баумана, д. 51", "+7 843 210-01-04"),
    Store("web", "Интернет-магазин", "Online store", "online"),
    Store("app", "Мобильное приложение", "Mobile app", "online"),
)
STORES_BY_CODE: dict[str, Store] = {s.code: s for s in STORES}
#: Channels that are not points of sale but still tell us who someone is.
CHANNEL_SOURCES: tuple[str, ...] = ("telegram", "whatsapp", "call_center", "email")


# --- names, places ----------------------------------------------------------------------------

# (Cyrillic, Latin for emails)
_RU_MALE = [
    ("Дмитрий", "dmitry"), ("Алексей", "alexey"), ("Сергей", "sergey"), ("Андрей", "andrey"),
    ("Михаил", "mikhail"), ("Иван", "ivan"), ("Никита", "nikita"), ("Артём", "artem"), ("Павел", "pavel"),
    ("Егор", "egor"), ("Максим", "maxim"), ("Роман", "roman"), ("Илья", "ilya"), ("Кирилл", "kirill"),
    ("Тимур", "timur"), ("Руслан", "ruslan"),
]
_RU_FEMALE = [
    ("Анна", "anna"), ("Мария", "maria"), ("Елена", "elena"), ("Ольга", "olga"), ("Екатерина", "ekaterina"),
    ("Наталья", "natalia"), ("Татьяна", "tatiana"), ("Юлия", "yulia"), ("Дарья", "daria"), ("Ксения", "ksenia"),
    ("Алина", "alina"), ("Виктория", "viktoria"), ("Полина", "polina"), ("Светлана", "svetlana"),
    ("Гульнара", "gulnara"), ("Диляра", "dilyara"),
]
# Male forms ending in -ов/-ев/-ин/-ёв: the female form adds "а" (and "a" in Latin).
_RU_LAST = [
    ("Смирнов", "smirnov"), ("Иванов", "ivanov"), ("Кузнецов", "kuznetsov"), ("Попов", "popov"),
    ("Васильев", "vasiliev"), ("Петров", "petrov"), ("Соколов", "sokolov"), ("Михайлов", "mikhailov"),
    ("Новиков", "novikov"), ("Фёдоров", "fedorov"), ("Морозов", "morozov"), ("Волков", "volkov"),
    ("Лебедев", "lebedev"), ("Козлов", "kozlov"), ("Егоров", "egorov"), ("Павлов", "pavlov"),
    ("Орлов", "orlov"), ("Никитин", "nikitin"), ("Захаров", "zakharov"), ("Зайцев", "zaitsev"),
    ("Гарипов", "garipov"), ("Хабибуллин", "khabibullin"), ("Сафин", "safin"), ("Ахметов", "akhmetov"),
]
_EN_MALE = ["James", "Oliver", "Harry", "Jack", "George", "Thomas", "William", "Daniel", "Michael", "Samuel"]
_EN_FEMALE = ["Olivia", "Emma", "Amelia", "Sophie", "Charlotte", "Grace", "Emily", "Jessica", "Chloe", "Lucy"]
_EN_LAST = [
    "Brown", "Smith", "Jones", "Taylor", "Williams", "Wilson", "Davies", "Evans", "Johnson", "Walker",
    "Wright", "Robinson", "Clarke", "Hughes", "Green", "Hall",
]
_RU_DOMAINS = ["mail.ru", "yandex.ru", "gmail.com", "bk.ru", "inbox.ru", "rambler.ru", "ya.ru"]
_EN_DOMAINS = ["gmail.com", "outlook.com", "yahoo.co.uk", "icloud.com", "hotmail.co.uk"]


@dataclass(frozen=True)
class _City:
    name: str
    streets: tuple[str, ...]
    stores: tuple[str, ...]  # store codes nearby
    country: str  # "RU" or "GB": which mobile numbers people there have
    mobile_prefixes: tuple[str, ...]
    weight: int


_CITIES: dict[str, tuple[_City, ...]] = {
    "ru": (
        _City("Москва", ("ул. Тверская", "ул. Арбат", "Ленинский пр-т", "ул. Покровка", "Кутузовский пр-т",
                         "ул. Профсоюзная", "ул. Маросейка"),
              ("store:msk-tverskaya", "store:msk-city"), "RU", ("916", "926", "903", "985", "977", "925", "915"), 45),
        _City("Санкт-Петербург", ("Невский пр-т", "ул. Рубинштейна", "Лиговский пр-т", "Большой пр-т П.С.",
                                  "наб. реки Фонтанки"),
              ("store:spb-nevsky",), "RU", ("911", "921", "931", "981", "999"), 25),
        _City("Казань", ("ул. Баумана", "ул. Пушкина", "пр-т Победы", "ул. Кремлёвская", "ул. Чистопольская"),
              ("store:kzn-baumana",), "RU", ("917", "927", "937", "987", "939"), 15),
        _City("Екатеринбург", ("ул. Малышева", "ул. Ленина", "ул. Вайнера"), (), "RU", ("912", "922", "950"), 8),
        _City("Новосибирск", ("Красный пр-т", "ул. Кирова", "ул. Фрунзе"), (), "RU", ("913", "923", "961"), 7),
    ),
    "en": (
        _City("Moscow", ("Tverskaya Street", "Arbat Street", "Leninsky Prospekt", "Pokrovka Street"),
              ("store:msk-tverskaya", "store:msk-city"), "RU", ("916", "926", "985"), 30),
        _City("Saint Petersburg", ("Nevsky Prospekt", "Rubinshteyna Street"), ("store:spb-nevsky",), "RU",
              ("911", "921"), 15),
        _City("London", ("Baker Street", "Camden Road", "King's Road", "Oxford Street"), (), "GB",
              ("7911", "7824", "7447", "7958"), 35),
        _City("Manchester", ("Deansgate", "Oxford Road", "Portland Street"), (), "GB", ("7723", "7966"), 20),
    ),
}
_CITY_BY_NAME = {c.name: c for cities in _CITIES.values() for c in cities}


# --- people -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Phone:
    country: str
    nsn: str  # national significant number

    @property
    def e164(self) -> str:
        return f"+7{self.nsn}" if self.country == "RU" else f"+44{self.nsn}"

    @property
    def as_said_in_store(self) -> str:  # 8 (916) 123-45-67
        n = self.nsn
        if self.country == "RU":
            return f"8 ({n[:3]}) {n[3:6]}-{n[6:8]}-{n[8:]}"
        return f"+44 {n[:4]} {n[4:]}"

    @property
    def as_typed_on_web(self) -> str:  # +7 (916) 123 45 67
        n = self.nsn
        if self.country == "RU":
            return f"+7 ({n[:3]}) {n[3:6]} {n[6:8]} {n[8:]}"
        return f"+44 {n[:4]} {n[4:7]} {n[7:]}"

    @property
    def as_telegram_sends(self) -> str:  # Telegram shares contacts without the plus
        return self.e164[1:] if self.country == "RU" else self.e164

    @property
    def as_dialled(self) -> str:  # caller id at the call center: 89161234567
        return f"8{self.nsn}" if self.country == "RU" else self.e164


@dataclass
class _Person:
    index: int
    locale: str
    female: bool
    first_name: str
    last_name: str
    latin: str  # for emails
    city: _City
    birthday: date | None
    phone: _Phone
    email: str
    user_id: str
    loyalty_card: str
    telegram_id: str
    home_store: str | None
    persona: str
    placeholder_email: bool = False  # the clerk types test@test.com
    sdk_bug: bool = False  # the login carried anonymous_id "undefined"
    family_anonymous_id: str | None = None  # a cookie shared with a spouse
    platform: str = "android"  # of their phone, for the app
    #: Decisions fixed for this person instead of left to chance (see `_Journey.chance`).
    fixed: dict[str, bool] = field(default_factory=dict)

    @property
    def traits(self) -> dict[str, Any]:
        traits: dict[str, Any] = {"first_name": self.first_name, "last_name": self.last_name, "locale": self.locale,
                                  "city": self.city.name}
        if self.birthday:
            traits["birthday"] = self.birthday.isoformat()
        return traits


@dataclass
class DemoStep:
    """One profile upsert of the demo, as some channel would send it."""

    person: int
    request: CustomerUpsert


def _ean13(first12: str) -> str:
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return first12 + str((10 - total % 10) % 10)


class _Generator:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used: set[str] = set()

    def unique(self, make) -> str:  # noqa: ANN001
        for _ in range(1000):
            value = make()
            if value not in self.used:
                self.used.add(value)
                return value
        raise RuntimeError("demo generator ran out of unique values")

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def phone(self, city: _City, fixed_nsn: str | None = None) -> _Phone:
        def make() -> str:
            if fixed_nsn:
                return fixed_nsn
            prefix = self.rng.choice(city.mobile_prefixes)
            return prefix + "".join(self.rng.choice("0123456789") for _ in range(10 - len(prefix)))

        while True:
            nsn = self.unique(make)
            phone = _Phone(city.country, nsn)
            if phonenumbers.is_valid_number(phonenumbers.parse(phone.e164)):
                return phone
            if fixed_nsn:
                raise ValueError(f"invalid demo phone {fixed_nsn}")

    def email(self, first: str, last: str, birthday: date | None, locale: str) -> str:
        rng = self.rng
        domains = _RU_DOMAINS if locale == "ru" else _EN_DOMAINS

        def make() -> str:
            year = f"{birthday.year % 100:02d}" if birthday else str(rng.randint(1, 99))
            local = rng.choice(
                [f"{first}.{last}", f"{first}_{last}", f"{first[0]}.{last}", f"{first}{year}", f"{last}.{first}{year}",
                 f"{first}.{last}{rng.randint(1, 999)}"]
            )
            return f"{local}@{rng.choice(domains)}"

        return self.unique(make)

    def person(self, index: int, **fixed: Any) -> _Person:
        rng = self.rng
        locale = fixed.get("locale") or ("ru" if rng.random() < 0.75 else "en")
        female = fixed.get("female", rng.random() < 0.55)
        if locale == "ru":
            first, first_lat = rng.choice(_RU_FEMALE if female else _RU_MALE)
            last, last_lat = rng.choice(_RU_LAST)
            if female:
                last, last_lat = last + "а", last_lat + "a"
        else:
            first = rng.choice(_EN_FEMALE if female else _EN_MALE)
            last = rng.choice(_EN_LAST)
            first_lat, last_lat = first.lower(), last.lower()
        if "name" in fixed:
            first, last, first_lat, last_lat = fixed["name"]
        cities = _CITIES[locale]
        city = _CITY_BY_NAME[fixed["city"]] if "city" in fixed else rng.choices(cities, [c.weight for c in cities])[0]
        birthday = None
        if rng.random() < 0.8:
            birthday = date(rng.randint(1962, 2006), rng.randint(1, 12), rng.randint(1, 28))
        home_store = fixed.get("home_store") or (rng.choice(city.stores) if city.stores else None)
        if "persona" in fixed:
            persona = fixed["persona"]
        elif home_store:
            persona = rng.choices(["omni", "web", "app", "store"], [45, 15, 12, 28])[0]
        else:
            persona = rng.choices(["web", "app"], [60, 40])[0]
        return _Person(
            index=index,
            locale=locale,
            female=female,
            first_name=first,
            last_name=last,
            latin=f"{first_lat}.{last_lat}",
            city=city,
            birthday=birthday,
            phone=self.phone(city, fixed.get("phone_nsn")),
            email=fixed.get("email") or self.email(first_lat, last_lat, birthday, locale),
            user_id=self.unique(lambda: str(rng.randint(1_000_000, 9_999_999))),
            loyalty_card=self.unique(lambda: _ean13("2770" + "".join(rng.choice("0123456789") for _ in range(8)))),
            telegram_id=self.unique(lambda: str(rng.randint(100_000_000, 7_999_999_999))),
            home_store=home_store,
            persona=persona,
            placeholder_email=fixed.get("placeholder_email", False),
            sdk_bug=fixed.get("sdk_bug", False),
            family_anonymous_id=fixed.get("family_anonymous_id"),
            platform=rng.choice(["ios", "android"]),
            fixed=fixed.get("fixed", {}),
        )


# --- journeys ---------------------------------------------------------------------------------


@dataclass
class _Journey:
    """A person's upserts on a relative clock (days since their first contact)."""

    person: _Person
    rng: random.Random
    day: float = 0.0
    steps: list[tuple[float, str, list[tuple[str, str]], dict[str, Any], list[tuple[str, str, bool]]]] = field(
        default_factory=list
    )
    late: list[int] = field(default_factory=list)  # indexes of steps sent after all others

    def wait(self, low: float, high: float) -> None:
        self.day += self.rng.uniform(low, high)

    def add(
        self,
        source: str,
        identifiers: list[tuple[str, str]],
        traits: dict[str, Any] | None = None,
        consents: list[tuple[str, str, bool]] | None = None,
    ) -> int:
        self.steps.append((self.day, source, identifiers, traits or {}, consents or []))
        return len(self.steps) - 1

    def maybe(self, probability: float) -> bool:
        return self.rng.random() < probability

    def chance(self, decision: str, probability: float) -> bool:
        """A named decision: fixed for special people, else random (drawn either way, so
        fixing one decision does not change the rest of the story)."""
        drawn = self.maybe(probability)
        return self.person.fixed.get(decision, drawn)

    # -- the moments of a customer's life that tell us who they are --

    def web_visit(self, anonymous_id: str) -> None:
        self.add("web", [("anonymous_id", anonymous_id)], {"locale": self.person.locale})

    def web_signup(self, anonymous_id: str, *, with_phone: bool) -> None:
        p = self.person
        ids = [("user_id", p.user_id), ("email", p.email), ("anonymous_id", anonymous_id)]
        if p.sdk_bug:
            ids.append(("anonymous_id", BROKEN_ANONYMOUS_ID))
        if with_phone:
            ids.append(("phone", p.phone.as_typed_on_web))
        traits = p.traits
        if self.maybe(0.5):
            traits["address"] = _address(self.rng, p)
        consents = [("email", "personal_data", True), ("email", "service", True)]
        consents.append(("email", "marketing", self.maybe(0.55)))
        self.add("web", ids, traits, consents)

    def store_visit(self, store: str, *, first: bool) -> int:
        p = self.person
        if first:  # the clerk issues a loyalty card and asks for a phone
            ids = [("phone", p.phone.as_said_in_store), ("loyalty_card", p.loyalty_card)]
            if p.placeholder_email:
                ids.append(("email", PLACEHOLDER_EMAIL))
            elif self.chance("store_email", 0.25):  # typed by the clerk, as heard
                ids.append(("email", f"  {p.email.capitalize()} "))
            traits = {"first_name": p.first_name, "preferred_store": store}
            if self.maybe(0.5):
                traits["last_name"] = p.last_name
            consents = [("sms", "personal_data", True), ("sms", "marketing", self.maybe(0.4))]
            return self.add(store, ids, traits, consents)
        traits = {"preferred_store": store} if store == p.home_store else {}
        return self.add(store, [("loyalty_card", p.loyalty_card)], traits)

    def app_login(self, anonymous_id: str, *, signup: bool) -> None:
        p = self.person
        ids = [("user_id", p.user_id), ("phone", p.phone.e164), ("anonymous_id", anonymous_id)]
        traits: dict[str, Any] = {"app_platform": p.platform, "locale": p.locale}
        consents = [("push", "service", True), ("push", "marketing", self.maybe(0.5))]
        if signup:
            if self.maybe(0.6):
                ids.append(("email", p.email))
            traits |= p.traits
            consents.append(("sms", "personal_data", True))
        self.add("app", ids, traits, consents)

    def telegram(self) -> None:
        p = self.person
        handle = f"{p.latin.replace('.', '_')}{self.rng.randint(1, 99)}"
        self.add(
            "telegram",
            [("telegram_id", p.telegram_id), ("phone", p.phone.as_telegram_sends)],
            {"telegram_username": handle},
            [("telegram", "service", True), ("telegram", "marketing", self.maybe(0.35))],
        )

    def whatsapp(self) -> None:
        p = self.person
        self.add("whatsapp", [("whatsapp", p.phone.e164), ("phone", p.phone.e164)], {},
                 [("whatsapp", "service", True)])

    def call_center(self) -> None:
        p = self.person
        traits: dict[str, Any] = {}
        if self.maybe(0.3) and p.city.country == "RU":  # moved: the agent updates the city
            moved_to = self.rng.choice([c for c in _CITIES[p.locale] if c.country == "RU" and c is not p.city])
            traits["city"] = moved_to.name
        consents = [("phone_call", "service", True)] if self.maybe(0.5) else []
        self.add("call_center", [("phone", p.phone.as_dialled)], traits, consents)

    def unsubscribe(self) -> None:
        self.add("email", [("email", self.person.email)], {}, [("email", "marketing", False)])


def _address(rng: random.Random, p: _Person) -> str:
    street = rng.choice(p.city.streets)
    if p.locale == "ru":
        return f"{street}, д. {rng.randint(1, 120)}, кв. {rng.randint(1, 300)}"
    if p.city.country == "RU":
        return f"{street} {rng.randint(1, 120)}, apt {rng.randint(1, 300)}"
    return f"{rng.randint(1, 220)} {street}, Flat {rng.randint(1, 40)}"


def _journey(person: _Person, rng: random.Random, gen: _Generator) -> _Journey:
    j = _Journey(person, rng)
    web_cookie = person.family_anonymous_id or gen.uuid()
    app_install = gen.uuid()
    store = person.home_store

    if person.persona == "omni":
        j.web_visit(web_cookie)
        j.wait(0, 3)
        with_phone = j.chance("signup_phone", 0.5)
        j.web_signup(web_cookie, with_phone=with_phone)
        j.wait(3, 40)
        store_step = j.store_visit(store, first=True)
        if j.chance("pos_offline", 0.12):
            j.late.append(store_step)  # the till was offline; this arrives after everything else
        j.wait(1, 30)
        if j.chance("app", 0.6) or not with_phone:
            j.app_login(app_install, signup=False)
        if j.maybe(0.5):
            j.wait(5, 60)
            j.store_visit(rng.choice([s.code for s in STORES if s.kind == "store"]) if j.maybe(0.2) else store,
                          first=False)
    elif person.persona == "web":
        j.web_visit(web_cookie)
        j.wait(0, 10)
        j.web_signup(web_cookie, with_phone=j.maybe(0.6))
        if j.maybe(0.5):  # the same account from a second browser
            j.wait(2, 60)
            other = gen.uuid()
            j.web_visit(other)
            j.wait(0, 1)
            j.add("web", [("email", person.email), ("anonymous_id", other)], {"locale": person.locale})
    elif person.persona == "app":
        j.add("app", [("anonymous_id", app_install)], {"app_platform": person.platform})
        j.wait(0, 2)
        j.app_login(app_install, signup=True)
    elif person.persona == "store":
        j.store_visit(store, first=True)
        if j.maybe(0.5):
            j.wait(5, 60)
            j.store_visit(store, first=False)
        if j.maybe(0.35):  # later discovers the website; registration asks for the phone
            j.wait(10, 90)
            j.web_visit(web_cookie)
            j.wait(0, 1)
            j.web_signup(web_cookie, with_phone=True)
    has_phone = any(t == "phone" for step in j.steps for t, _ in step[2])
    if has_phone and j.chance("telegram", 0.35):
        j.wait(2, 60)
        j.telegram()
    if has_phone and j.maybe(0.08):
        j.wait(2, 60)
        j.whatsapp()
    if has_phone and j.maybe(0.2):
        j.wait(2, 60)
        j.call_center()
    has_email_marketing = any(
        c == ("email", "marketing", True) for step in j.steps for c in step[4]
    )
    if has_email_marketing and j.maybe(0.1):
        j.wait(10, 90)
        j.unsubscribe()
    return j


def build_plan(customers: int, *, seed: int = DEFAULT_SEED, now: datetime | None = None) -> list[DemoStep]:
    """The demo's upserts, in the order they are sent. Pure: the same arguments give the same plan."""
    return _build(customers, seed=seed, now=now)[0]


def _build(customers: int, *, seed: int, now: datetime | None) -> tuple[list[DemoStep], list[_Journey]]:
    """The plan, and each person's journey (who they are, which channels they used)."""
    if customers < 0:
        raise ValueError("customers must be >= 0")
    now = now or utcnow()
    # One random stream per person, so the first N people are the same in any bigger demo.
    gen = _Generator(random.Random(f"{seed}/family"))
    family_cookie = gen.uuid()
    special: dict[int, dict[str, Any]] = {
        # The DESIGN.md journey's Anna, at the phone `seamline demo` suggests looking up.
        0: dict(locale="ru", female=True, name=("Анна", "Смирнова", "anna", "smirnova"), city="Москва",
                phone_nsn="9161234567", email="anna.smirnova@mail.ru", home_store="store:msk-tverskaya",
                persona="omni",
                # web, then the till (a second profile), then the app login that merges them
                fixed=dict(signup_phone=False, store_email=False, pos_offline=False, app=True, telegram=True)),
        # A couple on one family laptop: her login on his cookie is a conflict (two user_ids).
        1: dict(locale="ru", female=False, name=("Дмитрий", "Иванов", "dmitry", "ivanov"), city="Москва",
                persona="web", family_anonymous_id=family_cookie),
        2: dict(locale="ru", female=True, name=("Елена", "Иванова", "elena", "ivanova"), city="Москва",
                persona="app"),
        # Would not give an email at the till; the clerk typed a placeholder (blocked).
        3: dict(locale="en", female=True, name=("Olivia", "Brown", "olivia", "brown"), city="Moscow",
                persona="store", placeholder_email=True),
        4: dict(locale="ru", persona="web", sdk_bug=True),
        5: dict(locale="ru", persona="store", city="Казань", placeholder_email=True),
    }
    journeys: list[_Journey] = []
    starts: list[datetime] = []
    for index in range(customers):
        rng = gen.rng = random.Random(f"{seed}/{index}")
        person = gen.person(index, **special.get(index, {}))
        journey = _journey(person, rng, gen)
        if index == 2:  # later, on the family laptop, into her own account
            journey.wait(1, 5)
            journey.add("web", [("user_id", person.user_id), ("anonymous_id", family_cookie)],
                        {"locale": person.locale})
        start = now - timedelta(days=journey.day + rng.uniform(0.5, 300), seconds=rng.randint(0, 86_399))
        if index == 2:  # ... which happens after her husband signed up on it
            husband_signup = starts[1] + timedelta(days=journeys[1].steps[1][0])
            her_login = min(husband_signup + timedelta(days=1), now - timedelta(hours=1))
            start = max(start, her_login - timedelta(days=journey.day))
        journeys.append(journey)
        starts.append(start)

    plan: list[DemoStep] = []
    for journey, start in zip(journeys, starts):
        order = [i for i in range(len(journey.steps)) if i not in journey.late] + journey.late
        for i in order:
            day, source, identifiers, traits, consents = journey.steps[i]
            plan.append(
                DemoStep(
                    person=journey.person.index,
                    request=CustomerUpsert(
                        identifiers=[IdentifierIn(type=t, value=v) for t, v in identifiers],
                        traits=traits,
                        consents=[ConsentIn(channel=c, purpose=p, granted=g) for c, p, g in consents],
                        source=source,
                        timestamp=start + timedelta(days=day),
                    ),
                )
            )
    return plan, journeys


# --- filling a database -----------------------------------------------------------------------


def fill_demo(
    settings: Settings,
    *,
    customers: int = 200,
    seed: int = DEFAULT_SEED,
    now: datetime | None = None,
    database: Database | None = None,
    batch_size: int = 500,
    world: bool = True,
) -> dict[str, Any]:
    """Fill a migrated database with demo customers through the customer service, and create an
    admin API key named "demo"; with `world`, also the retailer around them (`demo_world`:
    catalog, stores and stock, loyalty, orders, the inbox, staff logins, storefront keys), once
    per database (a second fill adds customers only).

    Returns `customers` (active profiles), `identifiers` (held by them), `admin_key` (shown only
    here), and what resolution did: `upserts`, `merges`, `conflicts`, `ignored_identifiers`;
    with `world`, what `demo_world.world_counts` counts (`products`, `orders_by_status`,
    `conversations_by_state`...), `staff_users`, `logins` and the storefront's
    `storefront_api_key` and `storefront_write_key` (None when the world was there already).
    """
    runtime.wire()  # merges fold loyalty accounts, orders earn points: as in the server
    plan, journeys = _build(customers, seed=seed, now=now)
    rules = IdentifierRules(settings)
    own_database = database is None
    db = database if database is not None else Database(settings)
    merges = conflicts = ignored = 0
    try:
        for start in range(0, len(plan), batch_size):
            with db.write() as session:
                for step in plan[start : start + batch_size]:
                    outcome = upsert_customer(session, rules=rules, data=step.request)
                    merges += len(outcome.resolution.merges)
                    conflicts += len(outcome.resolution.conflicts)
                    ignored += len(outcome.ignored)
        with db.write() as session:
            _, admin_key = create_api_key(session, name="demo", scopes=[Scope.admin])
        made: dict[str, Any] = {}
        if world:
            from seamline import demo_world

            if demo_world.already_filled(db):
                made = {"storefront_api_key": None, "storefront_write_key": None, "staff_users": 0, "logins": []}
            else:
                made = demo_world.fill_world(db, settings, journeys=journeys, stores=STORES, seed=seed, now=now)
            made |= demo_world.world_counts(db)
            # The shop shows recommendations at once (the job queue retrains them from then on).
            from seamline.recommendations import training as recommendations_training

            made["recommendations"] = recommendations_training.train(db, settings, now=now)
        with db.read() as session:
            active = select(CustomerProfile.id).where(CustomerProfile.status == "active")
            profile_count = session.scalar(select(func.count()).select_from(active.subquery())) or 0
            identifier_count = session.scalar(
                select(func.count()).select_from(CustomerIdentity).where(CustomerIdentity.profile_id.in_(active))
            ) or 0
            open_conflicts = session.scalar(
                select(func.count()).select_from(CustomerConflict).where(CustomerConflict.status == "open")
            ) or 0
    finally:
        if own_database:
            db.dispose()
    return {
        "customers": profile_count,
        "identifiers": identifier_count,
        "admin_key": admin_key,
        "upserts": len(plan),
        "merges": merges,
        "conflicts": conflicts,
        "open_conflicts": open_conflicts,
        "ignored_identifiers": ignored,
        **made,
    }


# --- the demo's database and its settings ---------------------------------------------------------

#: Tables the migrations fill themselves: rows there are no one's data.
_SEEDED_TABLES = {"alembic_version", "commerce_catalog_version"}


def environment_file(database_url: str) -> Path | None:
    """`<file>.demo.json` beside a SQLite demo database: the settings `seamline demo` serves it
    with (the storefront's keys, login codes on screen, the stores' shared phones blocked), so
    `seamline serve` and every other command on that database use them too. None for PostgreSQL."""
    path = sqlite_path(database_url)
    return Path(f"{path}.demo.json") if path is not None else None


def demo_environment() -> dict[str, str]:
    """The settings of a demo that do not depend on the fill (the keys are added after it)."""
    from seamline.demo_world import PRODUCTS

    return {
        # A store's shared phone, typed at the till when a customer gives none, must link nobody.
        "SEAMLINE_BLOCKED_EXTRA_VALUES": json.dumps([s.phone for s in STORES if s.phone]),
        # The demo storefront shows login codes on screen: there is no SMS gateway.
        "SEAMLINE_LOGIN_CODES_REVEAL": "true",
        # The page at / lists the console logins; logs are lines a person reads.
        "SEAMLINE_DEMO": "true",
        # The chat bot answers new conversations first (docs/assistant.md).
        "SEAMLINE_ASSISTANT_ENABLED": "true",
        "SEAMLINE_STOREFRONT_PRODUCTS": json.dumps([p.code for p in PRODUCTS]),
        # Web push on: the shop's "Notify me" subscribes the browser, the abandoned cart reminds
        # it (a key pair of this demo's own; the browser's push service gets the notifications).
        "SEAMLINE_INBOX_WEBPUSH_VAPID_PRIVATE_KEY": os.environ.get("SEAMLINE_INBOX_WEBPUSH_VAPID_PRIVATE_KEY") or _vapid_key(),
    }


def _vapid_key() -> str:
    """A new P-256 private key, base64url of its raw 32 bytes (what `inbox_webpush_vapid_private_key` takes)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    secret = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value.to_bytes(32, "big")
    return base64.urlsafe_b64encode(secret).rstrip(b"=").decode()


def write_environment(database_url: str, values: dict[str, str]) -> Path | None:
    """Keep a demo's settings beside its SQLite database (readable by its owner only: it holds
    the storefront's API key). Returns the file, None for PostgreSQL."""
    path = environment_file(database_url)
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(values, file, indent=2)
    return path


def apply_environment(database_url: str) -> Path | None:
    """When the database is a demo's, put its settings into `os.environ` where the environment
    does not set them already (call `get_settings.cache_clear()` after). Returns the file used."""
    path = environment_file(database_url)
    if path is None or not path.is_file():
        return None
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for name, value in values.items():
        if name.startswith("SEAMLINE_") and name != "SEAMLINE_DATABASE_URL" and isinstance(value, str):
            os.environ.setdefault(name, value)
    return path


def has_data(database_url: str) -> bool:
    """Whether any table holds a row (the migrations' own rows aside)."""
    path = sqlite_path(database_url)
    if path is not None and not path.is_file():
        return False
    engine = create_engine(normalize_url(database_url))
    try:
        with engine.connect() as connection:
            tables = [t for t in inspect(connection).get_table_names() if t not in _SEEDED_TABLES]
            return any(connection.execute(text(f'SELECT 1 FROM "{t}" LIMIT 1')).first() for t in tables)
    finally:
        engine.dispose()


def clear_database(database_url: str) -> str | None:
    """Make way for a demo: an earlier demo's SQLite database (its settings file beside it) is
    removed; an empty or missing database is fine; anything else is left alone and the answer
    says why, in one line."""
    where = describe(database_url)
    path, settings_file = sqlite_path(database_url), environment_file(database_url)
    if path is not None and settings_file is not None and settings_file.is_file():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        settings_file.unlink()
        return None
    try:
        filled = has_data(database_url)
    except Exception as exc:  # noqa: BLE001 - any failure: say it in one line
        return f"cannot open the database at {where}: {str(exc).splitlines()[0][:300]}"
    if filled:
        return (f"the database at {where} holds data the demo did not make, and the demo fills only an empty database "
                "or replaces its own: give it another file (`seamline demo --database demo.db`) or set "
                "SEAMLINE_DATABASE_URL to another database")
    return None
