"""The `[graph]` table of licsync.toml, with environment overrides, validated at the boundary.

Secrets (the client secret, a certificate's password) come from `LICSYNC_GRAPH_CLIENT_SECRET` /
`LICSYNC_GRAPH_CERTIFICATE_PASSWORD` or `client_secret_file` / `certificate_password_file`,
never from the file itself or the command line, and are kept as `SecretStr` so no repr, log
line or error shows them.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    Strict,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from licsync import redact
from licsync.errors import ConfigError
from licsync.validation import Issue, issues

DEFAULT_URL = "https://graph.microsoft.com/v1.0"
DEFAULT_AUTHORITY = "login.microsoftonline.com"
# Identity and access write limit: 3,000 writes per 150 s per app and tenant → 20 per second.
DEFAULT_WRITE_RATE = 3000 / 150
# Total time one request may take, connection to last byte (a trickling answer ends there).
DEFAULT_REQUEST_DEADLINE = 120.0

# Graph host → Entra authority of its national cloud.
NATIONAL_AUTHORITIES: dict[str, str] = {
    "graph.microsoft.com": "login.microsoftonline.com",
    "graph.microsoft.us": "login.microsoftonline.us",
    "dod-graph.microsoft.us": "login.microsoftonline.us",
    "microsoftgraph.chinacloudapi.cn": "login.chinacloudapi.cn",
}

ENV_OVERRIDES: dict[str, str] = {
    "LICSYNC_GRAPH_URL": "url",
    "LICSYNC_GRAPH_TENANT_ID": "tenant_id",
    "LICSYNC_GRAPH_CLIENT_ID": "client_id",
    "LICSYNC_GRAPH_AUTH": "auth",
}
SECRET_ENV = "LICSYNC_GRAPH_CLIENT_SECRET"
CERTIFICATE_PASSWORD_ENV = "LICSYNC_GRAPH_CERTIFICATE_PASSWORD"
# Secret settings → the environment variable that carries them (or a `<key>_file`).
SECRET_KEYS: dict[str, str] = {
    "client_secret": SECRET_ENV,
    "certificate_password": CERTIFICATE_PASSWORD_ENV,
}


class AuthKind(StrEnum):
    CLIENT_SECRET = "client_secret"
    CERTIFICATE = "certificate"
    MANAGED_IDENTITY = "managed_identity"
    WORKLOAD_IDENTITY = "workload_identity"
    DEFAULT = "default"
    NONE = "none"


def is_loopback(url: str) -> bool:
    """Whether `url` points at this machine (127.0.0.0/8, ::1 or localhost)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class GraphSettings(BaseModel):
    """Validated `[graph]` settings; build them with `load_graph_settings()`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: StrictStr = DEFAULT_URL
    authority: StrictStr | None = None  # None: the authority of the url's national cloud
    tenant_id: StrictStr | None = None
    client_id: StrictStr | None = None
    auth: AuthKind = AuthKind.CLIENT_SECRET
    client_secret_file: Path | None = None
    certificate_path: Path | None = None
    certificate_password_file: Path | None = None
    ca_file: Path | None = None  # PEM bundle to trust (e.g. an emulator's test CA)
    client_secret: SecretStr | None = Field(default=None, exclude=True)
    certificate_password: SecretStr | None = Field(default=None, exclude=True)
    max_batches_in_flight: StrictInt | None = Field(default=None, ge=1, le=64)  # None: auto
    write_rate: Annotated[float, Strict()] = Field(
        default=DEFAULT_WRITE_RATE, gt=0, le=DEFAULT_WRITE_RATE * 5
    )
    max_attempts: StrictInt = Field(default=6, ge=1, le=50)
    max_total_wait_seconds: Annotated[float, Strict()] = Field(
        default=900.0, ge=0, allow_inf_nan=False
    )
    replication_wait_seconds: Annotated[float, Strict()] = Field(
        default=30.0, ge=0, le=600, allow_inf_nan=False
    )
    # Writes refused with 403 on distinct users in a row before the app itself is taken to
    # lack the permission and the writes stop (0: never).
    max_consecutive_denials: StrictInt = Field(default=25, ge=0)
    request_deadline_seconds: Annotated[float, Strict()] = Field(
        default=DEFAULT_REQUEST_DEADLINE, gt=0, le=3600, allow_inf_nan=False
    )
    _source: str = PrivateAttr(default="licsync.toml")  # the file the settings came from

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http(s) url, got {value!r}")
        try:
            parts.port  # noqa: B018 - raises for a port out of range
        except ValueError:
            raise ValueError(f"the port must be 1 to 65535, got {value!r}") from None
        if parts.username is not None or parts.password is not None:
            raise ValueError("the url takes no user or password (user@host)")
        if parts.query or parts.fragment:
            raise ValueError(f"the url takes no query or fragment, got {value!r}")
        if parts.scheme == "http" and not is_loopback(value):
            raise ValueError(f"plain http is only allowed for a loopback url, got {value}")
        return value.strip().rstrip("/")

    @field_validator("authority")
    @classmethod
    def _authority(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host = urlsplit(value).hostname if "://" in value else value.strip().strip("/")
        if not host or "/" in host:
            raise ValueError(f"expected a host name such as {DEFAULT_AUTHORITY}, got {value!r}")
        return host.lower()

    @property
    def source(self) -> str:
        """The configuration file these settings came from (for messages)."""
        return self._source

    @property
    def host(self) -> str:
        return (urlsplit(self.url).hostname or "").lower()

    @property
    def scope(self) -> str:
        """The token scope for this Graph endpoint (`https://<host>/.default`)."""
        return f"https://{self.host}/.default"

    @property
    def authority_host(self) -> str:
        return self.authority or NATIONAL_AUTHORITIES.get(self.host, DEFAULT_AUTHORITY)

    @property
    def identity(self) -> str:
        """The credential in words, for error messages (never a secret)."""
        return (
            f"auth = {self.auth}, tenant {self.tenant_id or '(not set)'}, "
            f"client {self.client_id or '(not set)'}"
        )


# What each credential kind needs: key → explanation.
_REQUIRED: dict[AuthKind, tuple[str, ...]] = {
    AuthKind.CLIENT_SECRET: ("tenant_id", "client_id", "client_secret"),
    AuthKind.CERTIFICATE: ("tenant_id", "client_id", "certificate_path"),
}


def graph_table_issues(raw: Mapping[str, Any]) -> list[Issue]:
    """What is wrong with a `[graph]` table as written (keys, types, ranges, the url), without
    the environment, secrets or credentials: the configuration file's own validation pass."""
    data = dict(raw)
    found: list[Issue] = []
    for key in SECRET_KEYS:
        if key in data:
            data.pop(key)
            found.append(Issue(("graph", key), _no_secret_in("the configuration file", key)))
    try:
        GraphSettings.model_validate(data)
    except ValidationError as exc:
        found.extend(issues(exc, GraphSettings, ("graph",)))
    return found


def _no_secret_in(source: str, key: str) -> str:
    return f"secrets are not read from {source}; set {SECRET_KEYS[key]} or {key}_file"


def load_graph_settings(
    raw: Mapping[str, Any] | None,
    env: Mapping[str, str] | None = None,
    *,
    path: str = "licsync.toml",
) -> GraphSettings:
    """Validate the `[graph]` table `raw` with the `LICSYNC_GRAPH_*` overrides from `env`.

    `env` defaults to `os.environ`. Raises `ConfigError(path, ["graph.<key>: …", …])`.
    """
    env = os.environ if env is None else env
    data = dict(raw or {})
    problems: list[str] = []
    for key in SECRET_KEYS:
        if key in data:
            data.pop(key)
            problems.append(f"graph.{key}: {_no_secret_in(path, key)}")
    for name, key in ENV_OVERRIDES.items():
        if env.get(name):
            data[key] = env[name]

    for key, env_name in SECRET_KEYS.items():
        file_key = f"{key}_file"
        secret = _read_secret(env.get(env_name) or None, data.get(file_key), file_key, problems)
        if secret is not None:
            redact.register(secret)
            data[key] = SecretStr(secret)

    try:
        settings = GraphSettings.model_validate(data)
    except ValidationError as exc:
        problems.extend(f"{i.key}: {i.message}" for i in issues(exc, GraphSettings, ("graph",)))
        raise ConfigError(path, problems) from None
    settings._source = path

    problems.extend(_cross_checks(settings))
    if problems:
        raise ConfigError(path, problems)
    return settings


def _read_secret(value: str | None, file: Any, key: str, problems: list[str]) -> str | None:
    """The secret from the environment (`value`, wins) or the first line of `file`."""
    if value is not None or not file:
        return value
    try:
        secret = Path(file).expanduser().read_text(encoding="utf-8").strip() or None
    except OSError as exc:
        problems.append(f"graph.{key}: cannot read {file}: {exc.strerror}")
        return None
    if secret is None:
        problems.append(f"graph.{key}: {file} is empty")
    return secret


def _cross_checks(settings: GraphSettings) -> list[str]:
    problems: list[str] = []
    if settings.auth is AuthKind.NONE and not is_loopback(settings.url):
        problems.append(
            f"graph.auth: 'none' is only allowed for a loopback url "
            f"(127.0.0.0/8, ::1, localhost), got {settings.url}"
        )
    for key in _REQUIRED.get(settings.auth, ()):
        if getattr(settings, key) is None:
            hint = f" (set {SECRET_ENV} or client_secret_file)" if key == "client_secret" else ""
            problems.append(f"graph.{key}: required when auth = '{settings.auth}'{hint}")
    certificate = settings.certificate_path
    if settings.auth is AuthKind.CERTIFICATE and certificate and not certificate.is_file():
        problems.append(f"graph.certificate_path: no such file {certificate}")
    if settings.ca_file is not None and not settings.ca_file.expanduser().is_file():
        problems.append(f"graph.ca_file: no such file {settings.ca_file}")
    return problems
