"""What each Entra licence error means and the remedy Microsoft documents for it.

From "Identify and resolve license assignment problems for a group in Microsoft Entra ID"
(learn.microsoft.com/entra/identity/users/licensing-groups-resolve-problems).
"""

from __future__ import annotations

from dataclasses import dataclass

from licsync.model import LicenseError

DOCS = "https://learn.microsoft.com/entra/identity/users/licensing-groups-resolve-problems"


@dataclass(frozen=True, slots=True)
class Remedy:
    meaning: str
    remedy: str
    anchor: str

    @property
    def url(self) -> str:
        return f"{DOCS}#{self.anchor}"


REMEDIES: dict[LicenseError, Remedy] = {
    LicenseError.COUNT_VIOLATION: Remedy(
        "Not enough licences: every seat of the product is in use.",
        "Purchase more licences of the product, or free unused ones from other users or "
        "groups; then run licsync again (nothing retries by itself).",
        "not-enough-licenses",
    ),
    LicenseError.MUTUALLY_EXCLUSIVE_VIOLATION: Remedy(
        "Conflicting service plans: a plan of this product cannot be used together with a "
        "plan the user already has from another source.",
        "Remove the user from one of the sources, or disable the conflicting plan in one "
        "of the licences.",
        "conflicting-service-plans",
    ),
    LicenseError.DEPENDENCY_VIOLATION: Remedy(
        "Other products depend on this licence: a plan needs a prerequisite plan the user "
        "would no longer have.",
        "Make sure the required plan is still assigned through another source, or disable "
        "the dependent services for the user; then the licence can be removed.",
        "other-products-depend-on-this-license",
    ),
    LicenseError.PROHIBITED_IN_USAGE_LOCATION_VIOLATION: Remedy(
        "Usage location not allowed: the user has no usage location, or a service is not "
        "available in the user's country.",
        "Set the user's usage location to where the user really is (or licsync's [policy] "
        "usage_location), or remove users from unsupported locations from the group.",
        "usage-location-isnt-allowed",
    ),
    LicenseError.UNIQUENESS_VIOLATION: Remedy(
        "Duplicate proxy addresses: the user's proxy address is already used by another "
        "object (Exchange Online).",
        "Fix the duplicate proxy address on the user or the other object; then run licsync again.",
        "duplicate-proxy-addresses",
    ),
    LicenseError.OTHER: Remedy(
        "Not assigned because another licence of the same group failed (a group's licences "
        "are all or nothing), or Graph refused for a reason it did not classify.",
        "Fix the partner problem of the same user and group shown beside it; otherwise read "
        "Graph's message.",
        "more-than-one-product-license-assigned-to-a-group",
    ),
}
