"""How a rule names a group: its object id, or its display name (case-insensitive).

One resolver for everyone who turns a rule's `group` into groups: the reader (which groups'
members to read) and the rules (`licsync.config.rules`, which reports a name matching none or
several). Both therefore agree on what a name means.
"""

from __future__ import annotations

from collections.abc import Mapping

from licsync.model import Group, guid


class GroupNames:
    """Groups by object id and by case-folded display name."""

    def __init__(self, groups: Mapping[str, Group]) -> None:
        self.groups = groups
        self.by_name: dict[str, list[Group]] = {}
        for group in groups.values():
            self.by_name.setdefault(group.display_name.casefold(), []).append(group)

    def matching(self, value: str) -> list[Group]:
        """The group whose id `value` is, else every group named `value` (none, one or more)."""
        found = self.groups.get(guid(value))
        if found is not None:
            return [found]
        return list(self.by_name.get(value.casefold(), ()))
