"""Stock and price sync from the accounting system: CSV and 1C CommerceML files through the API,
the CLI and the sync folder; whole-file rejection; idempotent re-imports; reserved stock."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from seamline.app import create_app
from seamline.cli import app as cli
from seamline.commerce import stock as stock_ledger
from seamline.commerce import sync
from seamline.commerce.models import CommerceStockMovement
from seamline.core.auth.schemas import Scope
from tests.commerce.conftest import put
from tests.conftest import make_key

FIXTURES = Path(__file__).parent / "fixtures"
NORTH, SOUTH, TVERSKAYA = (f"c1f2e3d{n}-8b1e-11ee-b962-0242ac120002" for n in (4, 5, 6))
CSV = {"Content-Type": "text/csv"}
XML = {"Content-Type": "application/xml"}


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def upload(client, headers, body: bytes, content_type: dict, expect: int = 201, **params) -> dict:
    response = client.post("/v1/stock/imports", content=body, headers={**headers, **content_type}, params=params)
    assert response.status_code == expect, response.text
    return response.json()


def levels(client, headers, sku: str) -> dict[str, int]:
    response = client.get(f"/v1/stock/{sku}", headers=headers)
    assert response.status_code == 200, response.text
    return {row["location"]: row["on_hand"] for row in response.json()}


def list_price(client, headers, product: str, sku: str, channel: str | None = None) -> int:
    body = client.get(f"/v1/catalog/products/{product}", params={"channel": channel} if channel else {}, headers=headers).json()
    return next(v["price"]["amount"] for v in body["variants"] if v["sku"] == sku)


def movements(database) -> list[tuple[str, int, str]]:
    with database.read() as session:
        return [(m.kind, m.on_hand_delta, m.reference) for m in session.scalars(
            select(CommerceStockMovement).order_by(CommerceStockMovement.id))]


def map_warehouses(client, headers) -> None:
    """The 1C warehouse ids, stored on the locations (the Tverskaya store too)."""
    from tests.commerce.conftest import LOCATIONS

    for code, external_id in (("wh-north", NORTH), ("wh-south", SOUTH), ("store-tverskaya", TVERSKAYA)):
        put(client, headers, f"/v1/locations/{code}", {**LOCATIONS[code], "external_id": external_id})


def test_csv_sets_on_hand_through_sync_movements_and_the_list_price_only(client, shop, settings, database):
    headers = shop["headers"]
    settings.commerce_price_override_channels = ["app"]
    put(client, headers, "/v1/catalog/products/serum", {
        "name_ru": "Сыворотка", "name_en": "Serum", "category": "face",
        "variants": [{"sku": "SERUM-30", "price": {"amount": 250000, "currency": "RUB"},
                      "channel_prices": {"app": {"amount": 240000, "currency": "RUB"}}}]})
    ledger_before = len(movements(database))

    run = upload(client, headers, fixture("stock.csv"), CSV, file_name="stock.csv")
    assert run["status"] == "applied" and run["format"] == "csv" and run["source"] == "http"
    assert (run["rows"], run["stock_lines"], run["movements"], run["prices_changed"], run["clamped"]) == (4, 3, 3, 2, 0)
    assert run["report"] == {"problems": [], "problems_total": 0, "warnings": []}
    assert levels(client, headers, "CREAM-50") == {"store-arbat": 8, "store-tverskaya": 3, "wh-north": 0, "wh-south": 10}
    assert levels(client, headers, "SERUM-30") == {"wh-north": 4, "wh-south": 12}
    assert list_price(client, headers, "serum", "SERUM-30") == 260000
    assert list_price(client, headers, "serum", "SERUM-30", channel="app") == 240000  # the override is untouched
    assert list_price(client, headers, "cream", "CREAM-100") == 359000
    assert list_price(client, headers, "cream", "CREAM-50") == 199000
    written = movements(database)[ledger_before:]
    assert sorted(delta for _, delta, _ in written) == [-2, 3, 11]
    assert {(kind, ref) for kind, _, ref in written} == {("sync", f"import:{run['id']} stock.csv")}

    fetched = client.get(f"/v1/stock/imports/{run['id']}", headers=headers)
    assert fetched.status_code == 200 and fetched.json() == run
    assert client.get("/v1/stock/imports/999999", headers=headers).json()["error"]["code"] == "stock_import_not_found"

    # The same bytes again: nothing is done.
    again = upload(client, headers, fixture("stock.csv"), CSV, expect=200)
    assert again["status"] == "unchanged" and again["duplicate_of"] == run["id"] and again["movements"] == 0
    # The same content written differently (rows in another order): checked, and nothing to change.
    header, *rows = fixture("stock.csv").decode().splitlines()
    reordered = "\n".join([header, *reversed(rows)]).encode()
    same = upload(client, headers, reordered, CSV)
    assert (same["status"], same["movements"], same["prices_changed"]) == ("applied", 0, 0)
    assert len(movements(database)) == ledger_before + 3


def test_commerceml_208_rests_per_warehouse_with_a_chosen_price_type(client, shop, settings, database):
    headers = shop["headers"]
    map_warehouses(client, headers)
    # Two price types in the package: without saying which is the list price, the file is refused.
    refused = upload(client, headers, fixture("offers_208.xml"), XML, expect=422)["error"]
    assert refused["code"] == "import_rejected"
    assert [(p["offer"], p["field"], p["sku"]) for p in refused["details"]["run"]["report"]["problems"]] == [
        (1, "Цены", "CREAM-50")]
    assert "SEAMLINE_COMMERCE_SYNC_PRICE_TYPE" in refused["details"]["run"]["report"]["problems"][0]["reason"]

    settings.commerce_sync_price_type = "Розничная"
    run = upload(client, headers, fixture("offers_208.xml"), XML, file_name="offers.xml")
    assert run["status"] == "applied" and run["format"] == "commerceml"
    assert (run["rows"], run["stock_lines"], run["movements"], run["prices_changed"]) == (3, 6, 4, 2)
    assert levels(client, headers, "CREAM-50") == {"store-arbat": 5, "store-tverskaya": 4, "wh-north": 7, "wh-south": 10}
    assert levels(client, headers, "CREAM-100") == {"wh-north": 6}
    assert levels(client, headers, "SERUM-30") == {"wh-north": 4, "wh-south": 0}  # offer without Артикул: its Ид
    assert list_price(client, headers, "cream", "CREAM-50") == 209000  # the retail price, not the wholesale 1450
    assert list_price(client, headers, "cream", "CREAM-100") == 349000
    assert list_price(client, headers, "serum", "SERUM-30") == 260000
    with database.read() as session:
        assert stock_ledger.check_stock(session) == []


def test_commerceml_207_warehouse_attributes_in_windows_1251(client, shop, database):
    headers = shop["headers"]
    map_warehouses(client, headers)
    from tests.commerce.conftest import LOCATIONS

    taken = client.put("/v1/locations/wh-south", json={**LOCATIONS["wh-south"], "external_id": NORTH}, headers=headers)
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "external_id_taken"
    run = upload(client, headers, fixture("offers_207_windows1251.xml"), XML)
    assert run["status"] == "applied", run
    # North unchanged (2), south 10 -> 9, Arbat (matched by its code) 5 -> 1, serum north 4 -> 7.
    assert (run["rows"], run["stock_lines"], run["movements"], run["prices_changed"]) == (2, 4, 3, 0)
    assert levels(client, headers, "CREAM-50") == {"store-arbat": 1, "store-tverskaya": 3, "wh-north": 2, "wh-south": 9}
    assert levels(client, headers, "SERUM-30") == {"wh-north": 7, "wh-south": 1}
    with database.read() as session:
        assert stock_ledger.check_stock(session) == []
        synced = session.scalar(select(func.sum(CommerceStockMovement.on_hand_delta)).where(CommerceStockMovement.kind == "sync"))
    assert synced == -1 - 4 + 3


def test_a_file_with_bad_rows_is_rejected_whole_with_every_problem(client, shop, database):
    headers = shop["headers"]
    before = (levels(client, headers, "CREAM-50"), levels(client, headers, "SERUM-30"), len(movements(database)))
    error = upload(client, headers, fixture("bad_rows.csv"), CSV, expect=422, file_name="bad_rows.csv")["error"]
    assert error["code"] == "import_rejected" and "3 problem(s)" in error["message"]
    run = error["details"]["run"]
    assert run["status"] == "rejected" and run["movements"] == 0 and run["report"]["problems_total"] == 3
    assert [(p["row"], p["field"], p["reason"]) for p in run["report"]["problems"]] == [
        (3, "sku", "unknown SKU 'GHOST-1'"),
        (4, "location", "unknown location 'warehouse-9'"),
        (5, "quantity", "negative quantity -4"),
    ]
    # The good rows (2: Arbat 8 at 1990,00 руб; 6: serum north 1) were not applied either.
    assert (levels(client, headers, "CREAM-50"), levels(client, headers, "SERUM-30"), len(movements(database))) == before
    assert client.get(f"/v1/stock/imports/{run['id']}", headers=headers).json()["status"] == "rejected"


def test_commerceml_offers_with_wrong_currency_bad_numbers_and_unknown_warehouses(client, shop, database):
    headers = shop["headers"]
    xml = """<?xml version="1.0" encoding="UTF-8"?>
<КоммерческаяИнформация xmlns="urn:1C.ru:commerceml_2" ВерсияСхемы="2.08" ДатаФормирования="2026-11-23T09:15:02">
<ПакетПредложений><Ид>p#</Ид><Предложения>
<Предложение><Ид>1</Ид><Артикул>CREAM-50</Артикул><Цены><Цена><ЦенаЗаЕдиницу>25.00</ЦенаЗаЕдиницу><Валюта>USD</Валюта></Цена></Цены>
 <Остатки><Остаток><Склад><Ид>wh-north</Ид><Количество>3,5</Количество></Склад></Остаток></Остатки></Предложение>
<Предложение><Ид>2</Ид><Артикул>SERUM-30</Артикул><Цены><Цена><ЦенаЗаЕдиницу>двести</ЦенаЗаЕдиницу></Цена></Цены>
 <Остатки><Остаток><Склад><Ид>00000000-dead</Ид><Количество>1</Количество></Склад></Остаток></Остатки></Предложение>
<Предложение><Ид>3</Ид><Артикул>CREAM-100</Артикул><Количество>5</Количество></Предложение>
</Предложения></ПакетПредложений></КоммерческаяИнформация>""".encode()
    before = len(movements(database))
    problems = upload(client, headers, xml, XML, expect=422)["error"]["details"]["run"]["report"]["problems"]
    assert [(p["offer"], p["field"]) for p in problems] == [
        (1, "Склад"), (1, "Валюта"), (2, "ЦенаЗаЕдиницу"), (2, "Склад"), (3, "Количество")]
    assert problems[0]["reason"] == "not a whole number of units: 3,5" and problems[0]["id"] == "1"
    assert problems[1]["reason"] == "prices are in RUB, not USD"
    assert problems[3]["reason"] == "unknown location '00000000-dead'"
    assert len(movements(database)) == before


@pytest.mark.parametrize("body, reason", [
    (fixture("offers_truncated.xml"), "malformed XML"),
    ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
     "<КоммерческаяИнформация><ПакетПредложений/></КоммерческаяИнформация>".encode(), "not allowed"),
    ('<?xml version="1.0" encoding="UTF-8"?><КоммерческаяИнформация xmlns="urn:1C.ru:commerceml_2"><Каталог>'
     "<Товары/></Каталог></КоммерческаяИнформация>".encode(), "no <ПакетПредложений>"),
    (b"<html><body>502 Bad Gateway</body></html>", "not a CommerceML document"),
    (b'<?xml version="1.0" encoding="UTF-16"?><a/>', "unsupported XML encoding"),
    (b"", "malformed XML"),
])
def test_a_malformed_commerceml_file_is_a_clear_422_and_changes_nothing(client, shop, database, body, reason):
    headers = shop["headers"]
    before = (levels(client, headers, "CREAM-50"), len(movements(database)))
    error = upload(client, headers, body, XML, expect=422)["error"]
    assert error["code"] == "malformed_file"
    problem = error["details"]["run"]["report"]["problems"][0]
    assert problem["field"] == "file" and reason in problem["reason"], problem
    assert (levels(client, headers, "CREAM-50"), len(movements(database))) == before


def test_upload_needs_a_stock_file_type_and_a_write_key(client, shop, database):
    headers = shop["headers"]
    wrong_type = client.post("/v1/stock/imports", content=b"{}", headers={**headers, "Content-Type": "application/json"})
    assert wrong_type.status_code == 415 and wrong_type.json()["error"]["code"] == "unsupported_media_type"
    reader = {"Authorization": f"Bearer {make_key(database, Scope.read)}", **CSV}
    assert client.post("/v1/stock/imports", content=fixture("stock.csv"), headers=reader).status_code == 403
    assert client.post("/v1/stock/imports", content=fixture("stock.csv"), headers=CSV).status_code == 401


def test_reserved_stock_is_respected_when_on_hand_drops(client, shop, database):
    headers = shop["headers"]
    placed = client.post("/v1/orders", json={"channel": "web", "lines": [{"sku": "CREAM-50", "quantity": 3}],
                                             "fulfilment": {"kind": "click_and_collect", "location": "store-arbat"}},
                         headers=headers)
    assert placed.status_code == 201, placed.text
    body = b"sku,location,quantity\nCREAM-50,store-arbat,1\nCREAM-50,wh-south,4\n"
    run = upload(client, headers, body, CSV)
    assert (run["status"], run["movements"], run["clamped"]) == ("applied", 2, 1)
    assert run["report"]["warnings"] == [{"row": 2, "field": "quantity", "sku": "CREAM-50", "location": "store-arbat",
                                          "quantity": 1, "reserved": 3,
                                          "reason": "below the 3 reserved for orders: on hand kept at 3"}]
    arbat = next(r for r in client.get("/v1/stock/CREAM-50", headers=headers).json() if r["location"] == "store-arbat")
    assert (arbat["on_hand"], arbat["reserved"], arbat["available"]) == (3, 3, 0)
    # Importing the same counts again (other bytes): nothing to write, the warning stays.
    again = upload(client, headers, body + b"\n", CSV)
    assert (again["movements"], again["clamped"]) == (0, 1)
    # The order can still be handed over from what was kept for it.
    order_id = placed.json()["id"]
    assert client.post(f"/v1/orders/{order_id}/ready", json={}, headers=headers).status_code == 200
    done = client.post(f"/v1/orders/{order_id}/pickup", json={"code": placed.json()["pickup_code"]}, headers=headers)
    assert done.status_code == 200, done.text
    assert levels(client, headers, "CREAM-50")["store-arbat"] == 0
    with database.read() as session:
        assert stock_ledger.check_stock(session) == []


def test_cli_imports_a_file_and_exits_1_with_the_report_when_rejected(client, shop, database, tmp_path):
    headers = shop["headers"]
    runner = CliRunner()
    good = runner.invoke(cli, ["stock", "import", str(FIXTURES / "stock.csv"), "--database-url", database.url])
    assert good.exit_code == 0, good.output
    run = json.loads(good.output)
    assert (run["status"], run["source"], run["file_name"], run["movements"]) == ("applied", "cli", "stock.csv", 3)
    assert levels(client, headers, "SERUM-30")["wh-south"] == 12

    again = runner.invoke(cli, ["stock", "import", str(FIXTURES / "stock.csv"), "--database-url", database.url])
    assert again.exit_code == 0 and json.loads(again.output)["status"] == "unchanged"

    bad = runner.invoke(cli, ["stock", "import", str(FIXTURES / "bad_rows.csv"), "--database-url", database.url])
    assert bad.exit_code == 1
    assert json.loads(bad.output)["report"]["problems_total"] == 3

    # A CommerceML file under another name: --format says what it is.
    renamed = tmp_path / "export.dat"
    renamed.write_bytes(fixture("offers_truncated.xml"))
    malformed = runner.invoke(cli, ["stock", "import", str(renamed), "--format", "commerceml", "--database-url", database.url])
    assert malformed.exit_code == 1 and "malformed XML" in malformed.output
    assert runner.invoke(cli, ["stock", "import", str(renamed), "--format", "json", "--database-url", database.url]).exit_code == 2


def test_the_sync_folder_is_imported_on_a_schedule(shop, settings, database, tmp_path):
    folder = tmp_path / "from-1c"
    folder.mkdir()
    (folder / "a_bad_rows.csv").write_bytes(fixture("bad_rows.csv"))
    (folder / "b_stock.csv").write_bytes(fixture("stock.csv"))
    (folder / "c_offers.xml.tmp").write_bytes(b"<still being written")
    settings.commerce_sync_dir = str(folder)
    settings.commerce_sync_interval_seconds = 0.05
    settings.serve_worker = True
    with TestClient(create_app(settings, database=database)) as client:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(list((folder / "done").glob("*.csv"))) < 1:
            time.sleep(0.05)
        assert levels(client, shop["headers"], "SERUM-30")["wh-south"] == 12
        # A file dropped later is picked up by a later pass.
        (folder / "d_more.csv").write_bytes(b"sku,location,quantity\nSERUM-30,wh-south,2\n")
        while time.monotonic() < deadline and len(list((folder / "done").glob("*.csv"))) < 2:
            time.sleep(0.05)
        assert levels(client, shop["headers"], "SERUM-30")["wh-south"] == 2

    done = sorted(p.name for p in (folder / "done").iterdir())
    rejected = sorted(p.name for p in (folder / "rejected").iterdir())
    assert [name.split("-", 1)[1] for name in done] == ["b_stock.csv", "b_stock.csv.report.json", "d_more.csv",
                                                        "d_more.csv.report.json"]
    assert [name.split("-", 1)[1] for name in rejected] == ["a_bad_rows.csv", "a_bad_rows.csv.report.json"]
    report = json.loads((folder / "rejected" / rejected[1]).read_text())
    assert report["status"] == "rejected" and report["source"] == "folder" and report["report"]["problems_total"] == 3
    assert (folder / "c_offers.xml.tmp").exists() and not list((folder / "processing").iterdir())


def test_sync_dir_command_for_cron(shop, database, tmp_path):
    (tmp_path / "offers.csv").write_bytes(fixture("stock.csv"))
    result = CliRunner().invoke(cli, ["stock", "sync-dir", str(tmp_path), "--database-url", database.url])
    assert result.exit_code == 0, result.output
    line = json.loads(result.output)
    assert (line["file_name"], line["status"], line["movements"], line["problems"]) == ("offers.csv", "applied", 3, 0)
    assert (tmp_path / "done" / f"{line['id']}-offers.csv").exists()
    # The same file dropped again (1C always writes offers.xml under one name): unchanged.
    (tmp_path / "offers.csv").write_bytes(fixture("stock.csv"))
    second = CliRunner().invoke(cli, ["stock", "sync-dir", str(tmp_path), "--database-url", database.url])
    assert json.loads(second.output)["status"] == "unchanged"
    assert len(list((tmp_path / "done").glob("*-offers.csv"))) == 2


@pytest.mark.parametrize("raw, expected", [
    ("12", (12, None)), ("12.000", (12, None)), (" 7 ", (7, None)), ("1 200", (1200, None)),
    ("-1", (None, "negative quantity -1")), ("2.5", (None, "not a whole number of units: 2.5")),
    ("", (None, "not a number: ''")), ("1e3", (None, "not a number: '1e3'")), ("NaN", (None, "not a number: 'NaN'")),
    ("10000000000", (None, "quantity over 1000000000")),
])
def test_quantities_as_accounting_systems_write_them(raw, expected):
    assert sync.parse_quantity(raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("1990", (199000, None)), ("1990.5", (199050, None)), ("1 990,50", (199050, None)), ("0.01", (1, None)),
    ("19.999", (None, "more than 2 decimal places: 19.999")), ("-5", (None, "negative price -5")),
    ("Infinity", (None, "not a number: 'Infinity'")),
])
def test_prices_become_minor_units(raw, expected):
    assert sync.parse_amount(raw) == expected


def test_csv_header_problems_are_reported():
    assert sync.parse_csv(b"").problems[0]["reason"].startswith("empty file")
    missing = sync.parse_csv(b"name,qty\nCream,1\n").problems
    assert missing[0]["row"] == 1 and missing[0]["field"] == "header" and "found: name, qty" in missing[0]["reason"]
    # windows-1251 and semicolons, as Excel saves in Russia
    parsed = sync.parse_csv("sku;location;quantity;price;currency\nКРЕМ-1;склад;3;1 990,00;руб\n".encode("cp1251"))
    assert parsed.problems == [] and parsed.stock == [(2, "КРЕМ-1", "склад", 3)]
    assert parsed.prices == [(2, "КРЕМ-1", 199000, "RUB")]
