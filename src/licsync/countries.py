"""ISO 3166-1 alpha-2 country codes, as Graph's `usageLocation` takes them.

The list comes from the `iso3166` package (ISO 3166-1 as published by the ISO 3166 Maintenance
Agency). Suggestions cover what administrators write instead: a code ISO reserves for another
use ("UK", "EL"), an alpha-3 code ("GBR"), or a country's name ("Germany").
"""

from __future__ import annotations

import difflib

import iso3166

# ISO 3166-1 "exceptionally reserved" codes that name an assigned country (ISO 3166/MA):
# UK (United Kingdom, assigned GB), EL (Greece in EU usage, assigned GR), FX (Metropolitan France).
RESERVED = {"UK": "GB", "EL": "GR", "FX": "FR"}


def is_country(code: str) -> bool:
    """Whether `code` is an assigned ISO 3166-1 alpha-2 code (any case)."""
    return code.upper() in iso3166.countries_by_alpha2


def suggest_country(text: str) -> str | None:
    """The alpha-2 code `text` most likely means, or None."""
    word = text.strip().upper()
    if word in RESERVED:
        return RESERVED[word]
    if word in iso3166.countries_by_alpha3:
        return iso3166.countries_by_alpha3[word].alpha2
    countries = iso3166.countries_by_alpha2.values()
    names = {c.name.upper(): c.alpha2 for c in countries}
    names.update({c.apolitical_name.upper(): c.alpha2 for c in countries})
    if word in names:
        return names[word]
    starts = sorted(code for name, code in names.items() if len(word) > 3 and name.startswith(word))
    if len(starts) == 1:
        return starts[0]
    close = difflib.get_close_matches(word, list(names), n=1, cutoff=0.8)
    return names[close[0]] if close else None
