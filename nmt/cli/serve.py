"""CLI: `nmt serve`: run the HTTP translation service (LibreTranslate-compatible API, web page).

uvicorn builds the app from the string "service.main:create_app" (in every worker process), so
`nmt` never imports `service`; the options reach the app's settings as NMT_* environment
variables. Any NMT_* variable already set (e.g. in a Docker image) applies unless an option here
overrides it.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import socket
from pathlib import Path

APP_FACTORY = "service.main:create_app"
BUNDLE_WEIGHTS = "model.pt"


def add_parser(sub: argparse._SubParsersAction) -> None:
    env = os.environ
    parser = sub.add_parser(
        "serve", help="serve models over HTTP (LibreTranslate-compatible API and a web page)",
        description="Serve translation models over HTTP. Without --model, every bundle "
                    "directory under --models-root is served (one model per language pair). "
                    "Every service setting can also be given as an NMT_* environment variable "
                    "(see service/settings.py), e.g. NMT_API_KEYS=key1,key2.")
    parser.add_argument("--model", action="append", default=[], metavar="DIR",
                        help="a model bundle directory (repeat for several language pairs)")
    parser.add_argument("--models-root", metavar="DIR",
                        help="where to look for bundles without --model (default: models)")
    parser.add_argument("--host", default=env.get("NMT_HOST", "127.0.0.1"),
                        help="address to listen on (default: 127.0.0.1; env NMT_HOST)")
    parser.add_argument("--port", type=int, default=int(env.get("NMT_PORT", "5000")),
                        help="port (default: 5000; env NMT_PORT)")
    parser.add_argument("--workers", type=int, default=int(env.get("NMT_WORKERS", "1")),
                        help="worker processes, each with its own copy of the models "
                             "(default: 1; env NMT_WORKERS)")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--num-threads", type=int, metavar="N",
                        help="torch CPU threads per worker (default: torch's choice)")
    parser.add_argument("--max-batch-tokens", type=int, metavar="N",
                        help="source subwords per merged batch (default: 4000)")
    parser.add_argument("--max-wait-ms", type=float, metavar="MS",
                        help="how long to wait for requests to merge (default: 5)")
    parser.add_argument("--no-batching", action="store_true",
                        help="translate each request alone (for benchmarks)")
    parser.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                        help="allow browser requests from this origin (repeatable; default: none)")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                        default=env.get("NMT_LOG_LEVEL", "info"))
    parser.set_defaults(run=run)


def settings_env(args: argparse.Namespace) -> dict[str, str]:
    """The NMT_* variables that carry the given options to the service's settings."""
    env: dict[str, str] = {"NMT_LOG_LEVEL": args.log_level}
    if args.model:
        env["NMT_MODELS"] = json.dumps([str(Path(m).resolve()) for m in args.model])
    if args.models_root:
        env["NMT_MODELS_ROOT"] = args.models_root
    if args.device:
        env["NMT_DEVICE"] = args.device
    if args.num_threads:
        env["NMT_NUM_THREADS"] = str(args.num_threads)
    if args.max_batch_tokens:
        env["NMT_MAX_BATCH_TOKENS"] = str(args.max_batch_tokens)
    if args.max_wait_ms is not None:
        env["NMT_MAX_WAIT_MS"] = str(args.max_wait_ms)
    if args.no_batching:
        env["NMT_BATCHING"] = "false"
    if args.cors_origin:
        env["NMT_CORS_ORIGINS"] = json.dumps(args.cors_origin)
    return env


def check_bundles(models: list[str], models_root: str) -> None:
    """Fails early, with one clear line, when there is nothing to serve."""
    from nmt.cli import CommandError

    for model in models:
        if not (Path(model) / BUNDLE_WEIGHTS).is_file():
            raise CommandError(f"--model {model}: not a model bundle (no {BUNDLE_WEIGHTS} inside)")
    if not models and not any((p / BUNDLE_WEIGHTS).is_file() for p in Path(models_root).glob("*")):
        raise CommandError(
            f"no model bundles under {models_root}/ (a bundle is a directory holding "
            f"{BUNDLE_WEIGHTS}, written by `nmt train`); pass --model DIR")


def check_port(host: str, port: int) -> None:
    """Fails in a second, naming host:port, when the address cannot be listened on (another
    server holds it, the host is not this machine's, a port below 1024 without the right),
    rather than after every worker has loaded its models."""
    from nmt.cli import CommandError

    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise CommandError(f"--host {host}: cannot resolve it ({err.strerror})") from err
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as err:
            hint = ("another process is listening there (a running `nmt serve`?); stop it or "
                    "choose another --port" if err.errno == errno.EADDRINUSE else
                    "choose another --host or --port")
            raise CommandError(f"cannot listen on {where}: {err.strerror}; {hint}") from err


def _env_list(text: str) -> list[str]:
    """A list setting as the service reads it: JSON, or comma-separated."""
    text = text.strip()
    if text.startswith("["):
        return [str(v) for v in json.loads(text)]
    return [part.strip() for part in text.split(",") if part.strip()]


def run(args: argparse.Namespace) -> None:
    from nmt.cli import CommandError

    if args.workers < 1:
        raise CommandError("--workers must be at least 1")
    check_port(args.host, args.port)
    env = settings_env(args)
    os.environ.update(env)
    check_bundles(args.model or _env_list(os.environ.get("NMT_MODELS", "")),
                  os.environ.get("NMT_MODELS_ROOT", "models"))

    import uvicorn  # here, not at the top: `nmt --help` and training need no web server

    uvicorn.run(APP_FACTORY, factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level=args.log_level)
