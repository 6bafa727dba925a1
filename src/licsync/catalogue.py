"""Microsoft's "Product names and service plan identifiers for licensing" catalogue.

Used for friendly names in reports and for building realistic tenants. The CSV is real-world
dirty: a UTF-8 BOM, padding with tabs and non-breaking spaces, duplicate rows, quoted commas, and a
part number with two GUIDs. Rows are cleaned here, once.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from licsync.model import guid


def _clean(text: str) -> str:
    return " ".join(text.replace("\u00a0", " ").split())


@dataclass(frozen=True, slots=True)
class CataloguePlan:
    id: str
    name: str
    friendly_name: str


@dataclass(frozen=True, slots=True)
class CatalogueSku:
    id: str
    part_number: str
    display_name: str
    plans: tuple[CataloguePlan, ...]


@dataclass(frozen=True, slots=True)
class Catalogue:
    skus: dict[str, CatalogueSku]

    def sku_name(self, sku_id: str, default: str | None = None) -> str | None:
        sku = self.skus.get(guid(sku_id))
        return sku.display_name if sku else default

    def by_part_number(self) -> dict[str, list[CatalogueSku]]:
        found: dict[str, list[CatalogueSku]] = {}
        for sku in self.skus.values():
            found.setdefault(sku.part_number, []).append(sku)
        return found


def parse_catalogue(path: Path | None = None) -> Catalogue:
    """Read a catalogue CSV (default: the copy shipped with licsync)."""
    if path is None:
        source = resources.files("licsync") / "data" / "product_names_service_plan_ids.csv"
        text = source.read_text(encoding="utf-8-sig")
    else:
        text = path.read_text(encoding="utf-8-sig")
    rows: dict[str, tuple[str, str, dict[str, CataloguePlan]]] = {}
    for row in csv.DictReader(text.splitlines()):
        sku_id = guid(row["GUID"])
        plan_id = guid(row["Service_Plan_Id"])
        if not sku_id or not plan_id:
            continue
        entry = rows.setdefault(
            sku_id, (_clean(row["String_Id"]), _clean(row["Product_Display_Name"]), {})
        )
        entry[2].setdefault(
            plan_id,
            CataloguePlan(
                plan_id,
                _clean(row["Service_Plan_Name"]),
                _clean(row["Service_Plans_Included_Friendly_Names"]),
            ),
        )
    return Catalogue(
        {
            sku_id: CatalogueSku(sku_id, part, display, tuple(plans.values()))
            for sku_id, (part, display, plans) in rows.items()
        }
    )


@cache
def default_catalogue() -> Catalogue:
    """The catalogue shipped with licsync, parsed once per process."""
    return parse_catalogue()
