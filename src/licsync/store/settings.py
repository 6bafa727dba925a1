"""The `[state]` table of the configuration file."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from licsync.errors import ConfigError, StateError
from licsync.store.urls import parse_state_url, redact_url, resolve_state_url
from licsync.validation import Issue, issues

DEFAULT_STATE_URL = "licsync-state.db"
ENV_STATE_URL = "LICSYNC_STATE_URL"
ENV_STATE_SCHEMA = "LICSYNC_STATE_SCHEMA"
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class StateSettings(BaseModel):
    """Where licsync keeps its state.

    `url` is a file path or `sqlite:///path` (SQLite, the default) or `postgresql://user:pw@host/db`.
    The environment variable LICSYNC_STATE_URL overrides the file (see `from_config`). The url's
    password never shows in the model's repr or in validation errors. `schema` (PostgreSQL only,
    LICSYNC_STATE_SCHEMA) keeps the store in its own PostgreSQL schema, created on first use:
    one per tenant when many tenants share one database.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", hide_input_in_errors=True, populate_by_name=True
    )

    url: StrictStr = Field(default=DEFAULT_STATE_URL, repr=False)
    # short, renewed by a heartbeat: a run that dies blocks the next one for at most a minute
    lease_ttl_seconds: Annotated[float, Strict()] = Field(default=60.0, gt=0, allow_inf_nan=False)
    # a run stops sending writes after this long, whatever is left (the next run goes on)
    max_run_seconds: Annotated[float, Strict()] = Field(
        default=6 * 3600.0, gt=0, allow_inf_nan=False
    )
    db_schema: StrictStr | None = Field(default=None, alias="schema")

    @field_validator("db_schema")
    @classmethod
    def _schema_name(cls, value: str | None) -> str | None:
        if value is not None and not SCHEMA_NAME.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a schema name licsync creates: use 1 to 63 lower-case "
                "letters, digits and underscores, starting with a letter or underscore"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _hide_the_password_of_a_bad_url(cls, data: Any) -> Any:
        """A url about to fail validation is redacted first: pydantic echoes failing input, and
        `hide_input_in_errors` only applies when this model is validated on its own."""
        if isinstance(data, Mapping) and isinstance(data.get("url"), str):
            try:
                parse_state_url(data["url"])
            except StateError:
                return {**data, "url": redact_url(data["url"])}
        return data

    @field_validator("url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        try:
            parse_state_url(value)
        except StateError as exc:
            raise ValueError(str(exc)) from None
        return value.strip()

    @property
    def safe_url(self) -> str:
        """The url as it may be logged or shown."""
        return redact_url(self.url)

    @property
    def backend(self) -> str:
        return parse_state_url(self.url).backend

    def __repr_args__(self) -> Any:
        yield "url", self.safe_url
        yield from super().__repr_args__()

    @classmethod
    def from_config(
        cls,
        table: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        *,
        base_dir: str | Path | None = None,
    ) -> StateSettings:
        """The `[state]` table, with LICSYNC_STATE_URL (when set and not empty) winning.

        With `base_dir` (the configuration file's directory), a relative SQLite path from the
        file resolves against it, not the current directory; one from LICSYNC_STATE_URL still
        resolves against the current directory, as a command-line path would.
        """
        data = dict(table or {})
        env = os.environ if environ is None else environ
        source = "[state] of the configuration file"
        if env.get(ENV_STATE_SCHEMA, "").strip():
            data["schema"] = env[ENV_STATE_SCHEMA].strip()
        if env.get(ENV_STATE_URL, "").strip():
            data["url"] = env[ENV_STATE_URL]
            source = ENV_STATE_URL
        elif base_dir is not None:
            url = data.get("url", DEFAULT_STATE_URL)
            if isinstance(url, str) and url.strip():
                with contextlib.suppress(StateError):  # validation reports it, redacted
                    data["url"] = resolve_state_url(url.strip(), base_dir)
        try:
            settings = cls.model_validate(data)
        except ValidationError as exc:
            problems = [f"{i.key}: {i.message}" for i in issues(exc, cls, ("state",))]
            raise ConfigError(source, problems) from None
        if settings.db_schema is not None and settings.backend != "postgresql":
            # checked here, not by the model: the url may come from the environment
            raise ConfigError(source, ["state.schema: applies to a postgresql:// url only"])
        return settings


def state_table_issues(raw: Mapping[str, Any]) -> list[Issue]:
    """What is wrong with a `[state]` table as written: the configuration file's own
    validation pass (LICSYNC_STATE_URL is checked when a command opens the store)."""
    try:
        StateSettings.model_validate(raw)
    except ValidationError as exc:
        return issues(exc, StateSettings, ("state",))
    return []
