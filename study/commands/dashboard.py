"""`equiscale dashboard`: serve optuna-dashboard on the study storage (learning curves, trial attributes)."""

from __future__ import annotations

import optuna_dashboard

from study.storage import DEFAULT_STORAGE
from study.errors import ConfigError
from study.storage import check_storage, open_storage


def add_arguments(parser) -> None:
    parser.add_argument("--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL (default {DEFAULT_STORAGE})")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080)")


def main(args) -> int:
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be in 1..65535, got {args.port}")
    check_storage(args.storage, must_exist=True)
    storage = open_storage(args.storage, read_only=True)
    print(f"optuna-dashboard on {args.storage}: http://{args.host}:{args.port}/", flush=True)
    try:
        optuna_dashboard.run_server(storage, host=args.host, port=args.port)
    except OSError as exc:
        raise ConfigError(f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}") from None
    return 0
