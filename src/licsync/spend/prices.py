"""The price file `[prices] file` names: one row per SKU, as Excel saves a sheet.

    sku,price,currency,per
    ENTERPRISEPACK,23.00,EUR,month
    06ebc4ee-1bb5-47dd-8120-11324bc54e06,432,EUR,year

UTF-8 (with or without a BOM) or UTF-16; `,` or `;` between cells (Excel's choice depends on
the locale, which also writes `23,50` for 23.50 when the separator is `;`). Every bad row is
reported with its file and line; prices in more than one currency are refused (licsync adds
them up).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from licsync.errors import InputError
from licsync.model import Tenant, guid
from licsync.textfile import read_text
from licsync.validation import shown

COLUMNS = ("sku", "price", "currency", "per")
MONTHS = {"month": Decimal(1), "year": Decimal(12)}
_CURRENCY = re.compile(r"[A-Z]{3}")
_GUID = re.compile(r"[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}")


@dataclass(frozen=True, slots=True)
class PriceList:
    """Monthly prices in one currency, by SKU part number (upper case) or skuId (lower case)."""

    currency: str
    monthly: Mapping[str, Decimal] = field(default_factory=dict)

    def for_tenant(self, tenant: Tenant) -> dict[str, Decimal]:
        """The monthly price of each of the tenant's SKUs the file prices, by skuId (a row
        naming the skuId wins over one naming the part number)."""
        found: dict[str, Decimal] = {}
        for sku in tenant.skus.values():
            price = self.monthly.get(sku.id, self.monthly.get(sku.part_number.upper()))
            if price is not None:
                found[sku.id] = price
        return found


def _delimiter(header: str) -> str:
    return ";" if header.count(";") > header.count(",") else ","


def _amount(text: str, delimiter: str) -> Decimal:
    """An amount as a locale writes it: 1234.50, 1,234.50, or (`;` files) 1.234,50."""
    value = text.strip().replace(" ", "").replace("\u00a0", "")
    comma, dot = value.rfind(","), value.rfind(".")
    if comma > dot and (dot >= 0 or delimiter == ";"):  # the comma is the decimal mark
        value = value.replace(".", "").replace(",", ".")
    else:
        value = value.replace(",", "")
    amount = Decimal(value)
    if not amount.is_finite() or amount < 0:
        raise InvalidOperation
    return amount


def _row(cells: dict[str, str], delimiter: str) -> tuple[str, Decimal, str]:
    """(SKU key, monthly price, currency) of one row; ValueError says what is wrong."""
    sku = cells["sku"].strip()
    if not sku:
        raise ValueError("sku is empty: give a part number (ENTERPRISEPACK) or a skuId")
    key = guid(sku) if _GUID.fullmatch(guid(sku)) else sku.upper()
    try:
        price = _amount(cells["price"], delimiter)
    except InvalidOperation:
        raise ValueError(
            f"price {shown(cells['price'].strip())} is not an amount (such as 23.50)"
        ) from None
    currency = cells["currency"].strip().upper()
    if not _CURRENCY.fullmatch(currency):
        raise ValueError(
            f"currency {shown(cells['currency'].strip())} is not an ISO 4217 code (such as EUR)"
        )
    per = cells["per"].strip().lower()
    if per not in MONTHS:
        raise ValueError(f'per {shown(cells["per"].strip())} must be "month" or "year"')
    return key, price / MONTHS[per], currency


def parse_prices(text: str, path: Path) -> PriceList:
    """A price list from the file's text; InputError lists every bad line."""
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise InputError(f"{path}:1: no header row: expected the columns {', '.join(COLUMNS)}")
    delimiter = _delimiter(lines[0])
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = [name.strip().lower() for name in next(reader)]
    missing = [name for name in COLUMNS if name not in header]
    if missing:
        raise InputError(
            f"{path}:1: missing column(s) {', '.join(missing)}: the header must name "
            f"{', '.join(COLUMNS)} (found {', '.join(map(shown, header))})"
        )
    errors: list[str] = []
    monthly: dict[str, Decimal] = {}
    seen: dict[str, int] = {}
    currencies: dict[str, int] = {}
    for cells in reader:
        number = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        row = dict(zip(header, cells, strict=False))
        if len(cells) < len(header) or any(row.get(name) is None for name in COLUMNS):
            errors.append(f"{path}:{number}: {len(cells)} cell(s), expected {len(header)}")
            continue
        try:
            key, price, currency = _row(row, delimiter)
        except ValueError as exc:
            errors.append(f"{path}:{number}: {exc}")
            continue
        if key in seen:
            errors.append(
                f"{path}:{number}: {row['sku'].strip()} is priced twice (line {seen[key]})"
            )
            continue
        seen[key] = number
        currencies.setdefault(currency, number)
        monthly[key] = price
    if len(currencies) > 1:
        found = ", ".join(f"{c} (line {n})" for c, n in currencies.items())
        errors.append(
            f"{path}: mixed currencies {found}: licsync adds prices up, so give every price "
            "in one currency"
        )
    if errors:
        raise InputError("\n".join(errors))
    if not monthly:
        raise InputError(f"{path}: prices no SKU (one row per SKU under the header)")
    return PriceList(next(iter(currencies)), monthly)


def load_prices(path: Path) -> PriceList:
    """Read and check the price file (see `parse_prices`)."""
    return parse_prices(read_text(path, "the price file"), path)
