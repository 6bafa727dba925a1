"""Subcommands of the `licsync` command line, one module per command family."""
