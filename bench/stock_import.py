"""Benchmark: CommerceML import of 100,000 offers across 50 warehouses.

A catalog of `--offers` SKUs and `--warehouses` warehouses (each with its 1C Ид as
`external_id`) goes straight into the tables (not timed). An `offers.xml` like 1C writes it
(CommerceML 2.08, namespace `urn:1C.ru:commerceml_2`, a retail price per offer, quantities as
`Остатки/Остаток/Склад`) lists each offer at `--per-offer` warehouses picked at random among
the 50. Then, timed, the same function `seamline stock import` runs:

1. **first import**: every (SKU, warehouse) is new: stock rows, one `sync` movement each,
   every list price changed;
2. **same file again**: the same bytes, answered `unchanged` from its SHA-256;
3. **next day's export**: 10 % of the quantities and 2 % of the prices changed;
4. **no change, new bytes**: the same content with another `ДатаФормирования`: parsed,
   checked and compared in full, nothing written.

Each run reports the parse alone (measured separately on the same bytes) and the whole
import; the books are proved against the ledger (`check_stock`) at the end.

    .venv/bin/python bench/stock_import.py --backend sqlite
    .venv/bin/python bench/stock_import.py --backend both
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

from sqlalchemy import text

from seamline.commerce import stock, sync
from seamline.core.config import Settings
from seamline.core.db import Database, DriverSQL
from seamline.core.time import utcnow

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load import insert_catalog, throwaway_database  # noqa: E402

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<КоммерческаяИнформация xmlns="urn:1C.ru:commerceml_2" xmlns:xs="http://www.w3.org/2001/XMLSchema" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ВерсияСхемы="2.08" ДатаФормирования="{date}">
\t<ПакетПредложений СодержитТолькоИзменения="false">
\t\t<Ид>6f1c0a52-8b1e-11ee-b962-0242ac120002#</Ид>
\t\t<Наименование>Пакет предложений (Основной каталог товаров)</Наименование>
\t\t<ИдКаталога>6f1c0a52-8b1e-11ee-b962-0242ac120002</ИдКаталога>
\t\t<ИдКлассификатора>6f1c0a52-8b1e-11ee-b962-0242ac120002</ИдКлассификатора>
\t\t<ТипыЦен>
\t\t\t<ТипЦены><Ид>a8b3f6e2-8b1e-11ee-b962-0242ac120002</Ид><Наименование>Розничная</Наименование><Валюта>RUB</Валюта></ТипЦены>
\t\t</ТипыЦен>
\t\t<Склады>
"""


def warehouse_id(n: int) -> str:
    return f"c1f2{n:04x}-8b1e-11ee-b962-0242ac120002"


def offers_xml(skus: list[str], quantities: dict[str, list[tuple[int, int]]], prices: dict[str, int], warehouses: int,
               date: str) -> bytes:
    parts = [HEAD.format(date=date)]
    parts += [f"\t\t\t<Склад><Ид>{warehouse_id(w)}</Ид><Наименование>Склад {w}</Наименование></Склад>\n" for w in range(warehouses)]
    parts.append("\t\t</Склады>\n\t\t<Предложения>\n")
    for n, sku in enumerate(skus):
        price = prices[sku]
        rests = "".join(
            f"\n\t\t\t\t\t<Остаток>\n\t\t\t\t\t\t<Склад>\n\t\t\t\t\t\t\t<Ид>{warehouse_id(w)}</Ид>\n"
            f"\t\t\t\t\t\t\t<Количество>{q}</Количество>\n\t\t\t\t\t\t</Склад>\n\t\t\t\t\t</Остаток>"
            for w, q in quantities[sku])
        parts.append(
            f"\t\t\t<Предложение>\n\t\t\t\t<Ид>{n:08x}-8b1f-11ee-b962-0242ac120002</Ид>\n\t\t\t\t<Артикул>{sku}</Артикул>\n"
            f"\t\t\t\t<Наименование>Товар {n}</Наименование>\n"
            '\t\t\t\t<БазоваяЕдиница Код="796" НаименованиеПолное="Штука" МеждународноеСокращение="PCE">шт</БазоваяЕдиница>\n'
            f"\t\t\t\t<Цены>\n\t\t\t\t\t<Цена>\n\t\t\t\t\t\t<Представление>{price // 100} RUB за шт</Представление>\n"
            "\t\t\t\t\t\t<ИдТипаЦены>a8b3f6e2-8b1e-11ee-b962-0242ac120002</ИдТипаЦены>\n"
            f"\t\t\t\t\t\t<ЦенаЗаЕдиницу>{price // 100}.{price % 100:02d}</ЦенаЗаЕдиницу>\n\t\t\t\t\t\t<Валюта>RUB</Валюта>\n"
            "\t\t\t\t\t\t<Единица>шт</Единица>\n\t\t\t\t\t\t<Коэффициент>1</Коэффициент>\n\t\t\t\t\t</Цена>\n\t\t\t\t</Цены>\n"
            f"\t\t\t\t<Количество>{sum(q for _, q in quantities[sku])}</Количество>\n"
            f"\t\t\t\t<Остатки>{rests}\n\t\t\t\t</Остатки>\n\t\t\t</Предложение>\n")
    parts.append("\t\t</Предложения>\n\t</ПакетПредложений>\n</КоммерческаяИнформация>\n")
    return "".join(parts).encode()


def build_catalog(database: Database, skus: list[str], warehouses: int) -> None:
    """Products, variants, list prices and warehouses straight into the tables (not timed)."""
    now = utcnow()
    with database.bulk_write() as session:
        sql = DriverSQL(session)
        t = sql.time(now)
        insert_catalog(sql, t, products=len(skus), variants=[(i + 1, sku, i + 1) for i, sku in enumerate(skus)],
                       prices=[100] * len(skus))
        sql.insert_rows("commerce_location", ("id", "code", "kind", "name_ru", "name_en", "address", "timezone",
                                              "opening_hours", "pickup_enabled", "safety_stock", "active", "external_id"),
                        [(w + 1, f"wh-{w:02d}", "warehouse", f"Склад {w}", f"Warehouse {w}", "", "Europe/Moscow", "{}",
                          False, 0, True, warehouse_id(w)) for w in range(warehouses)])
        if not database.is_sqlite:
            for table in ("commerce_product", "commerce_variant", "commerce_location"):
                session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))


def timed_import(database: Database, settings: Settings, data: bytes, name: str) -> dict:
    started = time.perf_counter()
    parsed = sync.parse_file(data, format="commerceml")
    parse_s = time.perf_counter() - started
    assert not parsed.problems, parsed.problems[:3]
    started = time.perf_counter()
    run = sync.import_data(database, settings=settings, data=data, file_name=name, format="commerceml", source="cli")
    return {"name": name, "mb": len(data) / 1e6, "parse_s": parse_s, "total_s": time.perf_counter() - started, "run": run}


def run_backend(backend: str, args: argparse.Namespace) -> list[dict]:
    with throwaway_database(backend, "seamline-stock") as (url, _workdir):
        settings = Settings(_env_file=None, database_url=url, log_level="WARNING")
        database = Database(settings)
        rng = random.Random(11)
        skus = [f"SKU-{n:06d}" for n in range(args.offers)]
        build_catalog(database, skus, args.warehouses)
        quantities = {sku: [(w, rng.randrange(0, 120)) for w in sorted(rng.sample(range(args.warehouses), args.per_offer))]
                      for sku in skus}
        prices = {sku: rng.randrange(10_000, 2_000_000) for sku in skus}
        first = offers_xml(skus, quantities, prices, args.warehouses, "2026-11-23T06:00:00")
        results = [timed_import(database, settings, first, "1. first import"),
                   timed_import(database, settings, first, "2. same file again")]
        for sku in skus:
            quantities[sku] = [(w, rng.randrange(0, 120) if rng.random() < 0.10 else q) for w, q in quantities[sku]]
            if rng.random() < 0.02:
                prices[sku] += 1000
        results.append(timed_import(database, settings, offers_xml(skus, quantities, prices, args.warehouses,
                                                                   "2026-11-24T06:00:00"), "3. next day's export"))
        results.append(timed_import(database, settings, offers_xml(skus, quantities, prices, args.warehouses,
                                                                   "2026-11-24T06:05:00"), "4. no change, new bytes"))
        with database.read() as session:
            wrong = stock.check_stock(session)
        database.dispose()
        for r in results:
            r["backend"], r["books"] = backend, "ok" if not wrong else f"{len(wrong)} differences"
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--offers", type=int, default=100_000)
    parser.add_argument("--warehouses", type=int, default=50)
    parser.add_argument("--per-offer", type=int, default=5, help="warehouses listed per offer")
    args = parser.parse_args()
    rows = []
    for backend in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
        rows += run_backend(backend, args)
        for r in rows[-4:]:
            print(f"{backend} {r['name']}: {r['total_s']:.2f} s {r['run']['status']}", file=sys.stderr)
    print("| backend | run | file | offers | stock lines | parse s | whole import s | status | movements | prices changed | books |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        run = r["run"]
        print(f"| {r['backend']} | {r['name']} | {r['mb']:.0f} MB | {run['rows']:,} | {run['stock_lines']:,} | "
              f"{r['parse_s']:.2f} | {r['total_s']:.2f} | {run['status']} | {run['movements']:,} | "
              f"{run['prices_changed']:,} | {r['books']} |")


if __name__ == "__main__":
    main()
