"""Stock and price sync from the retailer's accounting system (CSV and 1C CommerceML 2).

A file goes through three steps, and nothing is written unless all of them pass:

1. *parse* (no database): CSV rows or CommerceML offers become stock lines (SKU, warehouse,
   new on-hand) and prices (SKU, amount in minor units, currency); every malformed number,
   missing field or duplicate is collected as a problem `{row | offer, field, reason}`;
2. *check* (inside the write transaction): SKUs and warehouses are resolved to variants and
   locations, currencies compared with the price list's; more problems are collected;
3. *apply*, only when there is no problem at all: one transaction sets each (SKU, location)
   on-hand through a `sync` movement of the difference (none when unchanged, so re-importing
   writes nothing) and updates the list price (channel overrides are never touched).

On-hand never drops below what is reserved for orders: such a quantity is raised to the
reserved amount (the order keeps its units) and reported as a warning, so one oversold item
does not block the rest of the file. The same file content (SHA-256) already applied is
answered "unchanged" without any work. Every run is recorded in `commerce_stock_import`.

Mapping rules: an offer's SKU is its `Артикул`, or its `Ид` when it has no `Артикул`; a
warehouse (`Склад` Ид, `ИдСклада`, a CSV `location`) is the location whose `external_id` is
that value, else the location whose `code` is. See docs/commerce.md.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
import structlog
from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from seamline.commerce.models import CommerceLocation, CommerceStockImport
from seamline.core.config import Settings
from seamline.core.db import Database, DriverSQL
from seamline.core.errors import NotFound, Unprocessable
from seamline.core.time import utcnow

log = structlog.get_logger("seamline.commerce.sync")

#: Problems kept in a run's report (the count of all of them is kept too).
MAX_REPORTED_PROBLEMS = 1000
#: Largest quantity and price accepted (the ledger's and the price list's bounds).
MAX_QUANTITY = 1_000_000_000
MAX_AMOUNT = 10**15

FORMATS = ("csv", "commerceml")
CML = "urn:1C.ru:commerceml_2"

#: How 1C and spreadsheets write the rouble; anything else is taken as an ISO 4217 code.
_CURRENCY_ALIASES = {"руб": "RUB", "руб.": "RUB", "рубль": "RUB", "rur": "RUB", "643": "RUB", "₽": "RUB",
                     "usd": "USD", "840": "USD", "eur": "EUR", "978": "EUR", "тенге": "KZT", "398": "KZT",
                     "бел. руб": "BYN", "933": "BYN"}


class ImportRejected(Unprocessable):
    code = "import_rejected"


class MalformedFile(Exception):
    """The file as a whole cannot be read (encoding, XML syntax, not an offers package)."""


@dataclass
class ParsedFile:
    """What a file says, before it is matched against the database.

    `stock` holds (position, sku, warehouse, quantity) and `prices` (position, sku, amount,
    currency); a position is a CSV line number or a 1-based offer number."""

    format: str
    rows: int = 0
    stock: list[tuple[int, str, str, int]] = field(default_factory=list)
    prices: list[tuple[int, str, int, str]] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)
    #: Offer number -> 1C Ид, to name offers in problems.
    offer_ids: dict[int, str] = field(default_factory=dict)

    @property
    def position_key(self) -> str:
        return "row" if self.format == "csv" else "offer"

    def problem(self, position: int | None, field_name: str, reason: str, **more: Any) -> None:
        item: dict[str, Any] = {self.position_key: position, "field": field_name, "reason": reason}
        if position is not None and position in self.offer_ids:
            item["id"] = self.offer_ids[position]
        item.update(more)
        self.problems.append(item)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def detect_format(data: bytes, *, file_name: str = "", content_type: str = "") -> str:
    """csv or commerceml, from the content type, the file name, else the first bytes."""
    content_type = content_type.split(";")[0].strip().lower()
    if content_type in ("text/csv", "application/csv"):
        return "csv"
    if content_type in ("application/xml", "text/xml"):
        return "commerceml"
    name = file_name.lower()
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(".xml"):
        return "commerceml"
    return "commerceml" if data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<") else "csv"


# --- numbers -------------------------------------------------------------------------------------

_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)$")


def _decimal(raw: str) -> Decimal | None:
    """A decimal as accounting systems write it: `12`, `12.000`, `1 990,50`; None if not one."""
    text = raw.strip().replace("\u00a0", "").replace(" ", "")
    if not _NUMBER.match(text):
        return None
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        return None


def parse_quantity(raw: str) -> tuple[int | None, str | None]:
    """(quantity, None) or (None, reason)."""
    text = raw.strip()
    if text.isdigit() and len(text) < 10:  # the common case, without Decimal
        return int(text), None
    value = _decimal(text)
    if value is None:
        return None, f"not a number: {raw!r}"
    if value < 0:
        return None, f"negative quantity {raw.strip()}"
    if value != value.to_integral_value():
        return None, f"not a whole number of units: {raw.strip()}"
    if value > MAX_QUANTITY:
        return None, f"quantity over {MAX_QUANTITY}"
    return int(value), None


def parse_amount(raw: str) -> tuple[int | None, str | None]:
    """A price in major units (`1990.00`) as minor units (199000), or (None, reason)."""
    value = _decimal(raw)
    if value is None:
        return None, f"not a number: {raw!r}"
    if value < 0:
        return None, f"negative price {raw.strip()}"
    minor = value * 100
    if minor != minor.to_integral_value():
        return None, f"more than 2 decimal places: {raw.strip()}"
    if minor > MAX_AMOUNT:
        return None, "price too large"
    return int(minor), None


def normalize_currency(raw: str) -> str:
    text = raw.strip()
    return _CURRENCY_ALIASES.get(text.lower(), text.upper())


# --- text ----------------------------------------------------------------------------------------

def _decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM) or windows-1251, the two encodings 1C and Excel write."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):].decode("utf-8", errors="strict")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in data[:512]:
        raise MalformedFile("UTF-16 files are not supported: export in UTF-8 or windows-1251")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1251", errors="replace")


# --- CSV -----------------------------------------------------------------------------------------

CSV_COLUMNS = ("sku", "location", "quantity", "price", "currency")


def parse_csv(data: bytes, *, default_location: str = "") -> ParsedFile:
    """A header row naming the columns (any order, extra columns ignored): `sku` (required),
    `location`, `quantity` (the new on-hand), `price` (major units, `1990.00`) and `currency`.
    Comma or semicolon separated; UTF-8 or windows-1251."""
    parsed = ParsedFile(format="csv")
    try:
        text = _decode_text(data)
    except MalformedFile as exc:
        parsed.problem(None, "file", str(exc))
        return parsed
    if "\x00" in text:
        parsed.problem(None, "file", "the file contains NUL characters")
        return parsed
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        parsed.problem(None, "file", "empty file: a header row is required (sku, location, quantity, price, currency)")
        return parsed
    header_line = lines[0]
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except csv.Error as exc:
        parsed.problem(1, "header", f"unreadable header: {exc}")
        return parsed
    columns = {name: header.index(name) for name in CSV_COLUMNS if name in header}
    duplicated = sorted({h for h in header if header.count(h) > 1 and h in CSV_COLUMNS})
    if duplicated:
        parsed.problem(1, "header", f"column named twice: {', '.join(duplicated)}")
    if "sku" not in columns or ("quantity" not in columns and "price" not in columns):
        parsed.problem(1, "header", "the header must name sku and quantity and/or price "
                       f"(columns: {', '.join(CSV_COLUMNS)}); found: {', '.join(header) or 'nothing'}")
    if parsed.problems:
        return parsed

    def cell(row: list[str], name: str) -> str:
        index = columns.get(name)
        return row[index].strip() if index is not None and index < len(row) else ""

    line = 1
    try:
        for row in reader:
            line = reader.line_num
            if not any(value.strip() for value in row):
                continue
            parsed.rows += 1
            sku = cell(row, "sku")
            if not sku:
                parsed.problem(line, "sku", "missing SKU")
                continue
            raw_quantity, raw_price = cell(row, "quantity"), cell(row, "price")
            if not raw_quantity and not raw_price:
                parsed.problem(line, "quantity", "neither a quantity nor a price", sku=sku)
                continue
            if raw_quantity:
                quantity, reason = parse_quantity(raw_quantity)
                location = cell(row, "location") or default_location
                if reason:
                    parsed.problem(line, "quantity", reason, sku=sku)
                elif not location:
                    parsed.problem(line, "location", "a quantity needs a location", sku=sku)
                else:
                    parsed.stock.append((line, sku, location, quantity))
            if raw_price:
                amount, reason = parse_amount(raw_price)
                if reason:
                    parsed.problem(line, "price", reason, sku=sku)
                else:
                    parsed.prices.append((line, sku, amount, normalize_currency(cell(row, "currency"))))
    except csv.Error as exc:
        parsed.problem(line + 1, "file", f"unreadable CSV: {exc}")
    return parsed


# --- CommerceML ----------------------------------------------------------------------------------

#: Offers flattened to lines by libxslt, one batch of offers at a time: per offer an `O` line
#: (Ид, Артикул, total Количество), a `P` line per price (ИдТипаЦены, ЦенаЗаЕдиницу, Валюта),
#: an `R` line per Остатки/Остаток (has a Склад, Склад/Ид, quantity) and an `A` line per
#: `<Склад ИдСклада КоличествоНаСкладе>`. Values are whitespace-normalized, so a tab or a line
#: break never appears inside one. Walking the elements from Python instead (ElementTree, lxml
#: proxies or expat callbacks) took 2-3x as long on 100,000 offers.
_OFFERS_XSLT = """<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:c="urn:1C.ru:commerceml_2">
  <xsl:output method="text" encoding="UTF-8"/>
  <xsl:template match="/">
    <xsl:for-each select="*/{p}Предложение">
      <xsl:text>O&#9;</xsl:text><xsl:value-of select="normalize-space({p}Ид)"/>
      <xsl:text>&#9;</xsl:text><xsl:value-of select="normalize-space({p}Артикул)"/>
      <xsl:text>&#9;</xsl:text><xsl:value-of select="normalize-space({p}Количество)"/>
      <xsl:text>&#10;</xsl:text>
      <xsl:for-each select="{p}Цены/{p}Цена">
        <xsl:text>P&#9;</xsl:text><xsl:value-of select="normalize-space({p}ИдТипаЦены)"/>
        <xsl:text>&#9;</xsl:text><xsl:value-of select="normalize-space({p}ЦенаЗаЕдиницу)"/>
        <xsl:text>&#9;</xsl:text><xsl:value-of select="normalize-space({p}Валюта)"/>
        <xsl:text>&#10;</xsl:text>
      </xsl:for-each>
      <xsl:for-each select="{p}Остатки/{p}Остаток">
        <xsl:text>R&#9;</xsl:text><xsl:value-of select="count({p}Склад)"/>
        <xsl:text>&#9;</xsl:text><xsl:value-of select="normalize-space({p}Склад/{p}Ид)"/>
        <xsl:text>&#9;</xsl:text>
        <xsl:choose>
          <xsl:when test="{p}Склад/{p}Количество"><xsl:value-of select="normalize-space({p}Склад/{p}Количество)"/></xsl:when>
          <xsl:otherwise><xsl:value-of select="normalize-space({p}Количество)"/></xsl:otherwise>
        </xsl:choose>
        <xsl:text>&#10;</xsl:text>
      </xsl:for-each>
      <xsl:for-each select="{p}Склад">
        <xsl:text>A&#9;</xsl:text><xsl:value-of select="normalize-space(@ИдСклада)"/>
        <xsl:text>&#9;</xsl:text><xsl:value-of select="normalize-space(@КоличествоНаСкладе)"/>
        <xsl:text>&#10;</xsl:text>
      </xsl:for-each>
    </xsl:for-each>
  </xsl:template>
</xsl:stylesheet>"""

#: Offers transformed per XSLT call: large enough to amortize the call, small enough to keep
#: memory flat whatever the file's size.
_OFFERS_PER_BATCH = 5000


@lru_cache(maxsize=2)
def _offers_transform(namespaced: bool) -> etree.XSLT:
    stylesheet = _OFFERS_XSLT.replace("{p}", "c:" if namespaced else "")
    # Our own stylesheet; DENY_ALL still forbids it (and anything it reads) any file or network access.
    return etree.XSLT(etree.fromstring(stylesheet.encode()), access_control=etree.XSLTAccessControl.DENY_ALL)


_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def _check_xml_prolog(data: bytes) -> None:
    """Only UTF-8 and windows-1251 (what 1C writes), and no DTD: no entity is ever expanded or
    fetched (the parser is also told so), and no encoding can hide a declaration from this check."""
    body = data[len(codecs.BOM_UTF8):] if data.startswith(codecs.BOM_UTF8) else data
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in body[:512]:
        raise MalformedFile("UTF-16 files are not supported: export in UTF-8 or windows-1251")
    declared = _XML_ENCODING.match(body)
    if declared and declared.group(1).decode("ascii").lower() not in ("utf-8", "utf8", "windows-1251", "cp1251"):
        raise MalformedFile(f"unsupported XML encoding {declared.group(1).decode('ascii')!r}: use UTF-8 or windows-1251")
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise MalformedFile("document type declarations (DTD, entities) are not allowed")


def parse_commerceml(data: bytes, *, price_type: str = "", default_location: str = "") -> ParsedFile:
    """A CommerceML 2 offers package (`offers.xml`, also `rests_*.xml` / `prices_*.xml`):

    КоммерческаяИнформация / ПакетПредложений / Предложения / Предложение with `Ид`,
    `Артикул`, `Цены/Цена` (`ИдТипаЦены`, `ЦенаЗаЕдиницу`, `Валюта`) and quantities per
    warehouse, in either form 1C writes: `Остатки/Остаток/Склад` (`Ид`, `Количество`; 2.08
    and later) or `<Склад ИдСклада=".." КоличествоНаСкладе=".."/>` (2.07 and earlier). An
    offer's total `Количество` without warehouses goes to `default_location` when set.

    The list price is the offer's price of `price_type` (a 1C price type Ид or name); with no
    `price_type`, an offer's only price. Streamed: a batch of offers in memory at a time."""
    parsed = ParsedFile(format="commerceml")
    try:
        _check_xml_prolog(data)
        _read_offers(parsed, data, price_type=price_type.strip(), default_location=default_location)
    except MalformedFile as exc:
        parsed.problem(None, "file", str(exc))
    except etree.XMLSyntaxError as exc:
        line, column = exc.position
        parsed.problem(None, "file", f"malformed XML: {exc.msg}", line=line, column=column)
    return parsed


def _read_offers(parsed: ParsedFile, data: bytes, *, price_type: str, default_location: str) -> None:
    names = ("КоммерческаяИнформация", "ПакетПредложений", "ТипЦены", "Предложение")
    events = etree.iterparse(
        io.BytesIO(data), events=("start", "end"), tag=[f"{{*}}{n}" for n in names],
        resolve_entities=False, no_network=True, load_dtd=False, remove_comments=True, remove_pis=True, remove_blank_text=True,
    )
    ns: str | None = None
    in_package = False
    price_types: dict[str, str] = {}  # Ид and name -> Ид
    type_currency: dict[str, str] = {}
    batch: list[etree._Element] = []

    def flush() -> None:
        holder = etree.Element(f"{ns}Предложения")
        holder.extend(batch)  # moves the offers out of the document: memory stays flat
        lines = bytes(_offers_transform(bool(ns))(etree.ElementTree(holder))).decode("utf-8")
        _read_offer_lines(parsed, lines, price_types, type_currency, price_type, default_location)
        batch.clear()

    for event, element in events:
        tag = element.tag
        if ns is None:
            ns = tag[: tag.index("}") + 1] if tag.startswith("{") else ""
            if ns not in ("", "{" + CML + "}"):
                raise MalformedFile(f"unknown XML namespace {ns[1:-1]!r}, expected {CML!r}")
            if element.getparent() is not None or _local(tag) != "КоммерческаяИнформация":
                raise MalformedFile("not a CommerceML document: the root must be <КоммерческаяИнформация>")
            continue
        if tag.startswith("{") != bool(ns) or not tag.startswith(ns):
            continue  # the same local name in another namespace
        name = _local(tag)
        if name == "ПакетПредложений":
            in_package = in_package or element.getparent().getparent() is None
        elif event == "end" and in_package and name == "ТипЦены":
            type_id = (element.findtext(f"{ns}Ид") or "").strip()
            if type_id:
                price_types[type_id] = type_id
                type_name = (element.findtext(f"{ns}Наименование") or "").strip()
                if type_name:
                    price_types.setdefault(type_name, type_id)
                currency = (element.findtext(f"{ns}Валюта") or "").strip()
                if currency:
                    type_currency[type_id] = normalize_currency(currency)
        elif event == "end" and in_package and name == "Предложение":
            parent = element.getparent()
            if parent is not None and parent.tag == f"{ns}Предложения":
                batch.append(element)
                if len(batch) >= _OFFERS_PER_BATCH:
                    flush()
    if ns is None:
        root = events.root
        raise MalformedFile(f"not a CommerceML document: the root is <{_local(root.tag) if root is not None else '?'}>, "
                            "expected <КоммерческаяИнформация>")
    if not in_package:
        raise MalformedFile("no <ПакетПредложений> (offers package) in the document: "
                            "a catalog (import.xml) carries no stock or prices")
    if batch:
        flush()
    if price_type and price_types and price_type not in price_types:
        parsed.problem(None, "ТипЦены", f"price type {price_type!r} is not among the package's price types "
                       f"({', '.join(sorted(set(price_types.values())))})")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _read_offer_lines(
    parsed: ParsedFile, lines: str, price_types: dict[str, str], type_currency: dict[str, str], wanted_type: str,
    default_location: str,
) -> None:
    """The transform's lines (see `_OFFERS_XSLT`), one offer after another."""
    offer: list[Any] | None = None  # [number, Ид, Артикул, total, prices, rests]
    for line in lines.split("\n"):
        if not line:
            continue
        kind, _, rest = line.partition("\t")
        if kind == "O":
            if offer is not None:
                _read_offer(parsed, *offer, price_types, type_currency, wanted_type, default_location)
            parsed.rows += 1
            offer = [parsed.rows, *rest.split("\t"), [], []]
        elif kind == "P":
            offer[4].append(rest.split("\t"))
        else:
            offer[5].append(line.split("\t"))
    if offer is not None:
        _read_offer(parsed, *offer, price_types, type_currency, wanted_type, default_location)


def _read_offer(
    parsed: ParsedFile, number: int, offer_id: str, article: str, total: str, prices: list[list[str]],
    rests: list[list[str]], price_types: dict[str, str], type_currency: dict[str, str], wanted_type: str,
    default_location: str,
) -> None:
    if offer_id:
        parsed.offer_ids[number] = offer_id
    sku = article or offer_id
    if not sku:
        parsed.problem(number, "Ид", "an offer without Ид and Артикул")
        return

    # The list price: the configured price type's, or the offer's only price.
    chosen = None
    if wanted_type:
        type_id = price_types.get(wanted_type, wanted_type)
        chosen = next((p for p in prices if p[0] == type_id), None)
    elif len(prices) == 1:
        chosen = prices[0]
    elif prices:
        parsed.problem(number, "Цены", f"{len(prices)} prices (types {', '.join(p[0] or '?' for p in prices)}): choose "
                       "the list price's type with SEAMLINE_COMMERCE_SYNC_PRICE_TYPE", sku=sku)
    if chosen is not None:
        type_id, raw_amount, currency = chosen
        amount, reason = parse_amount(raw_amount)
        if reason:
            parsed.problem(number, "ЦенаЗаЕдиницу", reason, sku=sku)
        else:
            parsed.prices.append((number, sku, amount, normalize_currency(currency) if currency else type_currency.get(type_id, "")))

    # Quantities per warehouse.
    stock = parsed.stock
    for values in rests:
        if values[0] == "R":
            _, has_warehouse, warehouse, quantity = values
            if has_warehouse == "0":  # rests without warehouses: a total
                _add_quantity(parsed, number, sku, default_location, quantity, "Остаток")
                continue
        else:
            _, warehouse, quantity = values
        if warehouse and quantity.isdigit() and len(quantity) < 10:  # the common case, checked inline
            stock.append((number, sku, warehouse, int(quantity)))
        else:
            _add_quantity(parsed, number, sku, warehouse, quantity, "Склад")
    if not rests and total:
        if default_location:
            _add_quantity(parsed, number, sku, default_location, total, "Количество")
        else:
            parsed.problem(number, "Количество", "a total quantity without warehouses (Склад): name the "
                           "warehouses, or set SEAMLINE_COMMERCE_SYNC_DEFAULT_LOCATION", sku=sku)


def _add_quantity(parsed: ParsedFile, number: int, sku: str, warehouse: str, raw: str, field_name: str) -> None:
    if not warehouse:
        parsed.problem(number, field_name, "a quantity without a warehouse Ид", sku=sku)
        return
    if not raw:
        parsed.problem(number, field_name, f"no quantity for warehouse {warehouse!r}", sku=sku, warehouse=warehouse)
        return
    quantity, reason = parse_quantity(raw)
    if reason:
        parsed.problem(number, field_name, reason, sku=sku, warehouse=warehouse)
    else:
        parsed.stock.append((number, sku, warehouse, quantity))


def parse_file(data: bytes, *, format: str, price_type: str = "", default_location: str = "") -> ParsedFile:
    if format == "csv":
        return parse_csv(data, default_location=default_location)
    return parse_commerceml(data, price_type=price_type, default_location=default_location)


# --- check and apply -----------------------------------------------------------------------------

_FIELDS = {"csv": {"sku": "sku", "location": "location", "currency": "currency"},
           "commerceml": {"sku": "Артикул", "location": "Склад", "currency": "Валюта"}}


def applied_run_with(session: Session, digest: str) -> int | None:
    """The first applied run of this content, if any."""
    return session.scalar(
        select(CommerceStockImport.id)
        .where(CommerceStockImport.sha256 == digest, CommerceStockImport.status == "applied")
        .order_by(CommerceStockImport.id).limit(1)
    )


def _variant_ids(sql: DriverSQL, skus: list[str]) -> dict[str, int]:
    """Active variants by SKU, in one statement however many SKUs."""
    if sql.sqlite:
        rows = sql.execute("SELECT sku, id FROM commerce_variant WHERE active AND sku IN (SELECT value FROM json_each(?))",
                           (orjson.dumps(skus).decode(),)).fetchall()
    else:
        rows = sql.execute("SELECT sku, id FROM commerce_variant WHERE active AND sku = ANY(?)", (skus,)).fetchall()
    return dict(rows)


def _location_ids(session: Session) -> dict[str, tuple[int, bool]]:
    """Warehouse key -> (location id, active): external ids first, then codes."""
    by_key: dict[str, tuple[int, bool]] = {}
    rows = session.execute(select(CommerceLocation.id, CommerceLocation.code, CommerceLocation.external_id,
                                  CommerceLocation.active)).all()
    for location_id, code, _, active in rows:
        by_key[code] = (location_id, active)
    for location_id, _, external_id, active in rows:
        if external_id:
            by_key[external_id] = (location_id, active)
    return by_key


def _stock_totals(sql: DriverSQL, variant_ids: list[int]) -> dict[tuple[int, int], tuple[int, int, int]]:
    """(variant, location) -> (stock row id, on hand, reserved) for these variants."""
    if sql.sqlite:
        rows = sql.execute("SELECT variant_id, location_id, id, on_hand, reserved FROM commerce_stock "
                           "WHERE variant_id IN (SELECT value FROM json_each(?))",
                           (orjson.dumps(variant_ids).decode(),)).fetchall()
    else:
        rows = sql.execute("SELECT variant_id, location_id, id, on_hand, reserved FROM commerce_stock "
                           "WHERE variant_id = ANY(?)", (variant_ids,)).fetchall()
    return {(v, loc): (row_id, on_hand, reserved) for v, loc, row_id, on_hand, reserved in rows}


def _lock_totals(sql: DriverSQL, keys: list[tuple[int, int]]) -> dict[tuple[int, int], tuple[int, int, int]]:
    """PostgreSQL: lock these stock rows in (variant, location) order, the order every checkout
    uses (`stock.lock_stock`, which does the same one pair at a time through the ORM), and read
    them again. SQLite needs nothing: the transaction holds the database's write lock."""
    ordered = sorted(keys)
    rows = sql.execute(
        "SELECT s.variant_id, s.location_id, s.id, s.on_hand, s.reserved FROM commerce_stock s "
        "JOIN unnest(?::bigint[], ?::bigint[]) AS k(variant_id, location_id) "
        "ON s.variant_id = k.variant_id AND s.location_id = k.location_id "
        "ORDER BY s.variant_id, s.location_id FOR UPDATE OF s",
        ([k[0] for k in ordered], [k[1] for k in ordered]),
    ).fetchall()
    return {(v, loc): (row_id, on_hand, reserved) for v, loc, row_id, on_hand, reserved in rows}


def _insert_totals(sql: DriverSQL, rows: list[tuple[int, int, int]], now: datetime) -> set[tuple[int, int]]:
    """New stock rows (variant, location, on hand); returns the pairs inserted. On PostgreSQL a
    row a concurrent transaction inserted first is left alone (the caller locks and re-reads it)."""
    rows = sorted(rows)
    if sql.sqlite:
        stamp = sql.time(now)
        sql.insert_rows("commerce_stock", ("variant_id", "location_id", "on_hand", "reserved", "updated_at"),
                        [(v, loc, q, 0, stamp) for v, loc, q in rows])
        return {(v, loc) for v, loc, _ in rows}
    inserted = sql.execute(
        "INSERT INTO commerce_stock (variant_id, location_id, on_hand, reserved, updated_at) "
        "SELECT v, l, q, 0, ? FROM unnest(?::bigint[], ?::bigint[], ?::bigint[]) AS t(v, l, q) ORDER BY v, l "
        "ON CONFLICT (variant_id, location_id) DO NOTHING RETURNING variant_id, location_id",
        (now, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]),
    ).fetchall()
    return {(v, loc) for v, loc in inserted}


def _update_totals(sql: DriverSQL, rows: list[tuple[int, int]], now: datetime) -> None:
    """Set on hand of stock rows (id, on hand), already locked."""
    if not rows:
        return
    if sql.sqlite:
        stamp = sql.time(now)
        sql.executemany("UPDATE commerce_stock SET on_hand = ?, updated_at = ? WHERE id = ?",
                        [(on_hand, stamp, row_id) for row_id, on_hand in rows])
        return
    sql.execute("UPDATE commerce_stock AS s SET on_hand = t.on_hand, updated_at = ? "
                "FROM unnest(?::bigint[], ?::bigint[]) AS t(id, on_hand) WHERE s.id = t.id",
                (now, [r[0] for r in rows], [r[1] for r in rows]))


def _insert_movements(sql: DriverSQL, rows: list[tuple[int, int, int]], reference: str, now: datetime) -> None:
    """`sync` ledger rows (variant, location, on-hand delta)."""
    if not rows:
        return
    if sql.sqlite:
        stamp = sql.time(now)
        sql.insert_rows("commerce_stock_movement",
                        ("variant_id", "location_id", "kind", "on_hand_delta", "reserved_delta", "reference", "created_at"),
                        [(v, loc, "sync", delta, 0, reference, stamp) for v, loc, delta in rows])
        return
    sql.execute(
        "INSERT INTO commerce_stock_movement (variant_id, location_id, kind, on_hand_delta, reserved_delta, reference, "
        "created_at) SELECT v, l, 'sync', d, 0, ?, ? FROM unnest(?::bigint[], ?::bigint[], ?::bigint[]) AS t(v, l, d)",
        (reference, now, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]),
    )


def _apply_prices(sql: DriverSQL, wanted: dict[int, tuple[int, str]], now: datetime) -> int:
    """Set the list price (channel "") of these variants; channel overrides are left alone.
    Returns how many changed."""
    if not wanted:
        return 0
    ids = list(wanted)
    if sql.sqlite:
        current = sql.execute("SELECT variant_id, id, amount, currency FROM commerce_price WHERE channel = '' "
                              "AND variant_id IN (SELECT value FROM json_each(?))", (orjson.dumps(ids).decode(),)).fetchall()
    else:
        current = sql.execute("SELECT variant_id, id, amount, currency FROM commerce_price WHERE channel = '' "
                              "AND variant_id = ANY(?)", (ids,)).fetchall()
    existing = {v: (row_id, amount, currency) for v, row_id, amount, currency in current}
    updates = [(row_id, *wanted[v]) for v, (row_id, amount, currency) in existing.items() if (amount, currency) != wanted[v]]
    inserts = [(v, *price) for v, price in wanted.items() if v not in existing]
    if sql.sqlite:
        stamp = sql.time(now)
        sql.executemany("UPDATE commerce_price SET amount = ?, currency = ?, updated_at = ? WHERE id = ?",
                        [(amount, currency, stamp, row_id) for row_id, amount, currency in updates])
        sql.insert_rows("commerce_price", ("variant_id", "channel", "amount", "currency", "updated_at"),
                        [(v, "", amount, currency, stamp) for v, amount, currency in inserts])
    else:
        if updates:
            sql.execute("UPDATE commerce_price AS p SET amount = t.amount, currency = t.currency, updated_at = ? "
                        "FROM unnest(?::bigint[], ?::bigint[], ?::text[]) AS t(id, amount, currency) WHERE p.id = t.id",
                        (now, [u[0] for u in updates], [u[1] for u in updates], [u[2] for u in updates]))
        if inserts:
            sql.execute("INSERT INTO commerce_price (variant_id, channel, amount, currency, updated_at) "
                        "SELECT v, '', a, c, ? FROM unnest(?::bigint[], ?::bigint[], ?::text[]) AS t(v, a, c) "
                        "ON CONFLICT (variant_id, channel) DO UPDATE SET amount = excluded.amount, "
                        "currency = excluded.currency, updated_at = excluded.updated_at",
                        (now, [i[0] for i in inserts], [i[1] for i in inserts], [i[2] for i in inserts]))
    return len(updates) + len(inserts)


def check_and_apply(
    session: Session, *, settings: Settings, parsed: ParsedFile, file_name: str, digest: str, source: str,
    started_at: datetime,
) -> CommerceStockImport:
    """Match the parsed file against the catalog and locations; with no problem at all, apply it
    (see the module doc). Returns the run, recorded either way; never commits."""
    run = CommerceStockImport(file_name=file_name[:255], sha256=digest, format=parsed.format, source=source,
                              status="rejected", rows=parsed.rows, stock_lines=len(parsed.stock), movements=0,
                              prices_changed=0, clamped=0, report={}, started_at=started_at)
    session.add(run)
    session.flush()
    names = _FIELDS[parsed.format]
    sql = DriverSQL(session)

    skus = sorted({line[1] for line in parsed.stock} | {line[1] for line in parsed.prices})
    variants = _variant_ids(sql, skus) if skus else {}
    locations = _location_ids(session) if parsed.stock else {}

    targets: dict[tuple[int, int], tuple[int, int]] = {}  # (variant, location) -> (position, quantity)
    unknown: set[tuple[int, str]] = set()  # (position, SKU) reported unknown, once per row or offer
    for position, sku, warehouse, quantity in parsed.stock:
        variant_id = variants.get(sku)
        location = locations.get(warehouse)
        if variant_id is None and (position, sku) not in unknown:
            unknown.add((position, sku))
            parsed.problem(position, names["sku"], f"unknown SKU {sku!r}", sku=sku)
        if location is None or not location[1]:
            parsed.problem(position, names["location"], f"{'inactive' if location else 'unknown'} location {warehouse!r}",
                           sku=sku, location=warehouse)
        if variant_id is None or location is None or not location[1]:
            continue
        key = (variant_id, location[0])
        if key in targets:
            parsed.problem(position, names["location"], f"{sku} at {warehouse} is given twice "
                           f"(also {parsed.position_key} {targets[key][0]})", sku=sku, location=warehouse)
            continue
        targets[key] = (position, quantity)

    prices: dict[int, tuple[int, str]] = {}
    price_at: dict[int, int] = {}
    for position, sku, amount, currency in parsed.prices:
        variant_id = variants.get(sku)
        currency = currency or settings.commerce_currency
        if variant_id is None:
            if (position, sku) not in unknown:
                unknown.add((position, sku))
                parsed.problem(position, names["sku"], f"unknown SKU {sku!r}", sku=sku)
            continue
        if currency != settings.commerce_currency:
            parsed.problem(position, names["currency"], f"prices are in {settings.commerce_currency}, not {currency}",
                           sku=sku, currency=currency)
            continue
        if variant_id in prices and prices[variant_id] != (amount, currency):
            parsed.problem(position, "price", f"{sku} has another price in {parsed.position_key} {price_at[variant_id]}",
                           sku=sku)
            continue
        prices[variant_id] = (amount, currency)
        price_at[variant_id] = position

    if parsed.problems:
        ordered = sorted(parsed.problems, key=lambda p: p.get(parsed.position_key) or 0)
        run.report = {"problems": ordered[:MAX_REPORTED_PROBLEMS], "problems_total": len(parsed.problems),
                      "warnings": []}
        run.finished_at = utcnow()
        session.flush()
        return run

    now = utcnow()
    totals = _stock_totals(sql, sorted({v for v, _ in targets})) if targets else {}
    # Pairs with no stock row yet start from 0: insert them with their quantity straight away.
    fresh = [(v, loc, quantity) for (v, loc), (_, quantity) in targets.items() if (v, loc) not in totals and quantity > 0]
    inserted = _insert_totals(sql, fresh, now) if fresh else set()
    movements = [(v, loc, quantity) for v, loc, quantity in fresh if (v, loc) in inserted]
    # Rows whose on hand differs (or that a concurrent transaction just created): lock, re-read, set.
    candidates = [key for key, (_, quantity) in targets.items()
                  if key in totals and max(quantity, totals[key][2]) != totals[key][1]]
    candidates += [(v, loc) for v, loc, _ in fresh if (v, loc) not in inserted]
    if candidates and not sql.sqlite:
        totals.update(_lock_totals(sql, candidates))
    updates = []
    for key in sorted(candidates):
        row_id, on_hand, reserved = totals[key]
        new_on_hand = max(targets[key][1], reserved)
        if new_on_hand != on_hand:
            updates.append((row_id, new_on_hand))
            movements.append((*key, new_on_hand - on_hand))
    _update_totals(sql, updates, now)
    _insert_movements(sql, movements, f"import:{run.id} {file_name}"[:200], now)

    warnings = []
    location_codes = {location_id: code for code, (location_id, _) in locations.items()}
    sku_of = {variant_id: sku for sku, variant_id in variants.items()}
    for key, (position, quantity) in targets.items():
        reserved = totals[key][2] if key in totals else 0
        if quantity < reserved:
            warnings.append({parsed.position_key: position, "field": "quantity", "sku": sku_of[key[0]],
                             "location": location_codes.get(key[1]), "quantity": quantity, "reserved": reserved,
                             "reason": f"below the {reserved} reserved for orders: on hand kept at {reserved}"})
    run.status = "applied"
    run.movements = len(movements)
    run.prices_changed = _apply_prices(sql, prices, now)
    run.clamped = len(warnings)
    run.report = {"problems": [], "problems_total": 0, "warnings": warnings[:MAX_REPORTED_PROBLEMS]}
    run.finished_at = utcnow()
    session.flush()
    return run


def run_view(run: CommerceStockImport) -> dict[str, Any]:
    return {field_name: getattr(run, field_name) for field_name in (
        "id", "file_name", "sha256", "format", "source", "status", "duplicate_of", "rows", "stock_lines", "movements",
        "prices_changed", "clamped", "report", "started_at", "finished_at")}


def import_data(
    database: Database, *, settings: Settings, data: bytes, file_name: str, format: str | None = None,
    content_type: str = "", source: str,
) -> dict[str, Any]:
    """Import one file's content: parsed outside the write transaction, then checked and
    applied in one (`check_and_apply`). Content applied before is answered "unchanged"."""
    started_at = utcnow()
    digest = sha256(data)
    format = format or detect_format(data, file_name=file_name, content_type=content_type)
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}")

    def unchanged(session: Session, earlier: int) -> dict[str, Any]:
        run = CommerceStockImport(file_name=file_name[:255], sha256=digest, format=format, source=source,
                                  status="unchanged", duplicate_of=earlier, rows=0, stock_lines=0, movements=0,
                                  prices_changed=0, clamped=0, report={"problems": [], "problems_total": 0, "warnings": []},
                                  started_at=started_at, finished_at=utcnow())
        session.add(run)
        session.flush()
        return run_view(run)

    with database.read() as session:
        earlier = applied_run_with(session, digest)
    if earlier is not None:
        return database.run_write(lambda session: unchanged(session, earlier))
    if len(data) > settings.commerce_sync_max_bytes:
        parsed = ParsedFile(format=format)
        parsed.problem(None, "file", f"the file is larger than {settings.commerce_sync_max_bytes} bytes "
                       "(SEAMLINE_COMMERCE_SYNC_MAX_BYTES)")
    else:
        parsed = parse_file(data, format=format, price_type=settings.commerce_sync_price_type,
                            default_location=settings.commerce_sync_default_location)
    parsed_problems = list(parsed.problems)

    def work(session: Session) -> dict[str, Any]:
        parsed.problems = list(parsed_problems)  # a re-run starts from the parse's own problems
        again = applied_run_with(session, digest)  # a concurrent import of the same content
        if again is not None:
            return unchanged(session, again)
        return run_view(check_and_apply(session, settings=settings, parsed=parsed, file_name=file_name, digest=digest,
                                        source=source, started_at=started_at))

    return database.run_write(work)


def get_run(session: Session, run_id: int) -> dict[str, Any]:
    run = session.get(CommerceStockImport, run_id)
    if run is None:
        raise NotFound(f"Stock import {run_id} not found", code="stock_import_not_found")
    return run_view(run)


# --- the sync folder -----------------------------------------------------------------------------

#: Files the folder import takes; anything else (a half-written `.tmp`, a `.part`) is left alone.
_FOLDER_SUFFIXES = {".csv": "csv", ".xml": "commerceml"}


def import_folder(database: Database, *, settings: Settings, folder: Path) -> list[dict[str, Any]]:
    """Import the files waiting in `folder`, in name order, each into `done/` or `rejected/`
    (as `<run id>-<name>`, with `<run id>-<name>.report.json` beside it). A file is claimed by
    moving it into `processing/` first, so several processes may watch the same folder; one
    that fails for another reason (the database is down) goes back to wait for the next pass.
    The accounting system should write each file under another name (`offers.xml.tmp`) and
    rename it when complete."""
    processing, done, rejected = folder / "processing", folder / "done", folder / "rejected"
    for sub in (processing, done, rejected):
        sub.mkdir(parents=True, exist_ok=True)
    runs = []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        format = _FOLDER_SUFFIXES.get(path.suffix.lower())
        if format is None:
            continue
        claimed = processing / path.name
        try:
            path.rename(claimed)
        except FileNotFoundError:
            continue  # another process took it
        try:
            data = claimed.read_bytes()
            run = import_data(database, settings=settings, data=data, file_name=path.name, format=format, source="folder")
        except Exception:
            claimed.rename(path)
            raise
        target = (rejected if run["status"] == "rejected" else done) / f"{run['id']}-{path.name}"
        (target.parent / f"{target.name}.report.json").write_bytes(orjson.dumps(run, option=orjson.OPT_INDENT_2))
        claimed.rename(target)
        log.info("stock file imported", file=path.name, run=run["id"], status=run["status"],
                 movements=run["movements"], prices_changed=run["prices_changed"])
        runs.append(run)
    return runs
