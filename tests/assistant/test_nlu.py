"""The bot's understanding, without a database: languages, transliteration, what a message
names, and the intent model on the two held-out sets (bench/data), which it never trained on."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from seamline.assistant import nlu

BENCH_DATA = Path(__file__).resolve().parents[2] / "bench" / "data"


@pytest.fixture(scope="module")
def model() -> nlu.IntentModel:
    return nlu.IntentModel.fit(nlu.shipped_phrases())


@pytest.mark.parametrize("text,lang", [
    ("где мой заказ?", "ru"), ("where is my order?", "en"), ("gde moy zakaz", "ru"), ("skolko u menya ballov", "ru"),
    ("wher is my ordr", "en"), ("hochu pogovorit s operatorom", "ru"), ("pickup code pls", "en"), ("12345", "en"),
])
def test_language(text, lang):
    assert nlu.language(text) == lang


def test_russian_in_latin_letters_is_read_as_cyrillic():
    assert nlu.model_text("Gde moy zakaz 1042?", "ru") == "где мой заказ 0"
    assert nlu.model_text("Где мой заказ №1042?") == "где мой заказ # 0"


def test_what_a_message_names():
    assert nlu.phones("мой номер 8 (916) 123-45-67, звоните") == ["+79161234567"]
    assert nlu.emails("пишите на Anna.Smirnova@Mail.ru.") == ["anna.smirnova@mail.ru"]
    assert nlu.code("мой код 123 456", 6) == "123456" and nlu.code("код 12345", 6) is None
    assert nlu.numbers("где заказ №1042 и #77?") == [1042, 77]
    assert nlu.numbers("телефон +7 916 123-45-67") == []  # a phone is not an order number
    catalog = {1: ["Крем для лица", "Face cream", "cream"], 2: ["Сыворотка", "Serum", "serum"]}
    assert nlu.product_in("есть ли сывороткa в наличии", catalog).product_id == 2  # a Latin "a" typed inside
    assert nlu.product_in("is the face creme in stock?", catalog).product_id == 1
    assert nlu.product_in("где мой заказ", catalog) is None
    stores = {1: ["Тверская", "Tverskaya"], 2: ["Арбат", "Arbat"]}
    assert nlu.place_in("до скольки работает магазин на Тверской?", stores) == 1
    assert nlu.place_in("есть на арбате?", stores) == 2 and nlu.place_in("когда работаете", stores) is None


@pytest.mark.parametrize("name", ["assistant_heldout.json", "assistant_heldout_2.json"])
def test_held_out_accuracy_in_both_languages(model, name):
    """The issue's target is 90 %; each intent must stay above 80 % (bench/README.md has the table)."""
    rows = json.loads((BENCH_DATA / name).read_text(encoding="utf-8"))
    right, total = Counter(), Counter()
    for row in rows:
        total[row["intent"]] += 1
        right[row["intent"]] += model.predict(row["text"]).intent == row["intent"]
    overall = sum(right.values()) / sum(total.values())
    assert overall >= 0.9, overall
    weak = {intent: right[intent] / total[intent] for intent in total if right[intent] / total[intent] < 0.8}
    assert not weak, weak
    for lang in ("ru", "en"):
        mine = [r for r in rows if r["lang"] == lang]
        assert sum(model.predict(r["text"]).intent == r["intent"] for r in mine) / len(mine) >= 0.88


def test_training_is_deterministic_and_quick(model):
    again = nlu.IntentModel.fit(nlu.shipped_phrases())
    texts = ["где мой заказ", "points?", "позовите оператора", "asdfgh"]
    assert [again.predict(t).intent for t in texts] == [model.predict(t).intent for t in texts]
    assert [round(again.predict(t).confidence, 6) for t in texts] == [round(model.predict(t).confidence, 6) for t in texts]
