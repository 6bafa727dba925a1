"""licsync: Entra ID group-based licensing, computed locally and pushed through Microsoft Graph."""

__version__ = "0.1.0"
