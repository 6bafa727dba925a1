"""`licsync emulator`: serve a tenant over a local Graph v1.0 API until interrupted."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from licsync.emulator.throttle import FaultConfig, ThrottleConfig
from licsync.errors import InputError

if TYPE_CHECKING:
    from licsync.emulator.state import Tenant

SECRET_ENV = "LICSYNC_EMULATOR_CLIENT_SECRET"


def register(subparsers: Any) -> None:
    """Add the `emulator` subcommand to licsync's argparse subparsers."""
    parser = subparsers.add_parser(
        "emulator",
        help="run a local Microsoft Graph emulator for licensing",
        description="Serve a tenant (from a snapshot or generated) over a Graph v1.0 API.",
    )
    source = parser.add_argument_group("tenant")
    source.add_argument("--snapshot", metavar="FILE", help="tenant snapshot to serve")
    source.add_argument("--users", type=int, default=1000, help="generated users (default 1000)")
    source.add_argument("--groups", type=int, default=50, help="generated groups (default 50)")
    source.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    source.add_argument(
        "--restricted-share",
        type=float,
        default=0.0,
        help="share of generated users in a restricted management administrative unit, whose "
        "writes Graph refuses with 403 (default 0)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default loopback)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 = any)")
    parser.add_argument("--save", metavar="FILE", help="write the tenant as a snapshot on exit")
    secure = parser.add_argument_group("HTTPS and tokens")
    secure.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS (HTTP/2) with this chain")
    secure.add_argument("--tls-key", metavar="PEM", help="its private key (default: --tls-cert)")
    secure.add_argument(
        "--require-token",
        metavar="CLIENT_ID",
        help="issue tokens at /{tenant}/oauth2/v2.0/token to this client (secret from "
        f"{SECRET_ENV}) and refuse Graph requests without a valid one",
    )
    secure.add_argument("--token-lifetime", type=float, default=3600.0, help="token lifetime (s)")
    limits = parser.add_argument_group("throttling and faults")
    limits.add_argument("--throttle", action="store_true", help="enforce Graph's limits")
    limits.add_argument("--resource-units", type=int, help="resource units per 10 s")
    limits.add_argument("--write-limit", type=int, default=3000, help="writes per window")
    limits.add_argument("--write-window", type=float, default=150.0, help="write window (s)")
    limits.add_argument("--time-scale", type=float, default=1.0, help="run emulated time faster")
    limits.add_argument("--fault-rate", type=float, default=0.0, help="share of failed requests")
    limits.add_argument("--latency", type=float, default=0.0, help="seconds added per request")
    limits.add_argument("--fault-seed", type=int, default=0, help="seed for injected faults")
    limits.add_argument(
        "--fault-retry-after", type=float, default=1.0, help="Retry-After of injected 429s (s)"
    )
    limits.add_argument(
        "--replication-lag",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="reads of a user lag this long behind writes to it, as Entra's replicas (default 0)",
    )
    parser.set_defaults(handler=run)


def limits(args: argparse.Namespace) -> tuple[ThrottleConfig, FaultConfig]:
    """The throttling and fault settings the command line asks for."""
    throttle = ThrottleConfig(
        enabled=args.throttle,
        resource_units=args.resource_units,
        write_limit=args.write_limit,
        write_window=args.write_window,
        time_scale=args.time_scale,
    )
    faults = FaultConfig(
        rate=args.fault_rate,
        latency=args.latency,
        seed=args.fault_seed,
        retry_after=args.fault_retry_after,
    )
    return throttle, faults


def load_tenant(path: str) -> Tenant:
    """The emulator's tenant from a snapshot file; InputError (exit 3) names the file."""
    from licsync.emulator.state import Tenant

    try:
        data = orjson.loads(Path(path).read_bytes())
    except OSError as exc:
        raise InputError(f"{path}: cannot read the snapshot: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON: {exc}") from None
    try:
        if not isinstance(data, dict):
            raise TypeError("the file is not a JSON object")
        return Tenant.from_snapshot(data)
    except KeyError as exc:
        raise InputError(
            f"{path}: not a tenant snapshot (docs/snapshot.md): an object lacks {exc}"
        ) from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"{path}: not a tenant snapshot (docs/snapshot.md): {exc}") from None


def run(args: argparse.Namespace) -> int:
    from licsync.emulator.auth import TokenIssuer
    from licsync.emulator.server import Emulator

    throttle, faults = limits(args)
    tls = (args.tls_cert, args.tls_key or args.tls_cert) if args.tls_cert else None
    secret = os.environ.get(SECRET_ENV, "")
    if args.require_token and not secret:
        print(f"licsync emulator: --require-token needs {SECRET_ENV}", file=sys.stderr)
        return 2
    emulator = Emulator(
        tenant=load_tenant(args.snapshot) if args.snapshot else None,
        users=args.users,
        groups=args.groups,
        seed=args.seed,
        throttle=throttle,
        faults=faults,
        host=args.host,
        port=args.port,
        replication_lag=args.replication_lag,
        restricted=args.restricted_share,
        tls=tls,
    )
    tenant = emulator.tenant
    if args.require_token:
        issuer = TokenIssuer(tenant.tenant_id, args.require_token, secret, args.token_lifetime)
        emulator.app.auth = issuer
    print(
        f"licsync emulator: {len(tenant.users)} users, {len(tenant.groups)} groups, "
        f"{len(tenant.skus)} SKUs at {emulator.url}",
        file=sys.stderr,
    )
    try:
        emulator.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if args.save:
            emulator.save(args.save)
            print(f"licsync emulator: saved the tenant to {args.save}", file=sys.stderr)
    return 0
