"""A local Microsoft Graph v1.0 emulator for licensing (issue 3)."""
