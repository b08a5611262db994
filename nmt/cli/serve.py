"""CLI: `nmt serve`: run the HTTP translation service (LibreTranslate-compatible API, web page).

uvicorn builds the app from the string "service.main:create_app" (in every worker process), so
`nmt` never imports `service`; the options reach the app's settings as NMT_* environment
variables. Any NMT_* variable already set (e.g. in a Docker image) applies unless an option here
overrides it.

Before uvicorn starts, every bundle is loaded once here, so that a bad one is one line naming
it (or, with --skip-bad-models, left out and listed by /ready) rather than a worker's traceback.
The transport limits are uvicorn's options (see `uvicorn_options`): the h11 protocol, which
bounds the request head (service/transport.py says why), keep-alive and head deadlines,
a connection limit, a graceful-shutdown deadline, and forwarded headers trusted only from
the proxies named.
"""

from __future__ import annotations

import argparse
import errno
import gc
import json
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

APP_FACTORY = "service.main:create_app"
HTTP_PROTOCOL = "service.transport:HeadTimeoutH11Protocol"  # h11, with a deadline on heads
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
    parser.add_argument("--model-processes", type=int, metavar="N",
                        help="model worker processes per server process, where the decoder "
                             "runs (0: in the server process; default: the cores divided "
                             "among the --workers; env NMT_MODEL_PROCESSES)")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"],
                        help="decoding precision (NMT_PRECISION; default auto: bf16 autocast on "
                             "a GPU that has it, else fp32); bf16 on a CPU runs the matrix "
                             "products in bfloat16")
    parser.add_argument("--num-threads", type=int, metavar="N",
                        help="torch CPU threads per model worker process (default: the cores "
                             "divided among them)")
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
    parser.add_argument("--skip-bad-models", action="store_true",
                        default=env.get("NMT_SKIP_BAD_MODELS", "").lower() in ("1", "true"),
                        help="serve the bundles that load and list the others in /ready, "
                             "instead of stopping at the first bad one (env NMT_SKIP_BAD_MODELS)")
    parser.add_argument("--max-model-parameters", type=_positive_int, metavar="N",
                        default=env.get("NMT_MAX_MODEL_PARAMETERS", "200000000"),
                        help="refuse a bundle whose weights hold more parameters (default: "
                             "200000000; env NMT_MAX_MODEL_PARAMETERS)")
    _add_connection_limits(parser.add_argument_group(
        "connection limits", "uvicorn's transport options; each also an NMT_* variable"))
    parser.set_defaults(run=run)


def _add_connection_limits(limits: argparse._ArgumentGroup) -> None:
    env = os.environ
    limits.add_argument("--forwarded-allow-ips", metavar="IPS",
                        default=env.get("NMT_TRUSTED_PROXIES", ""),
                        help="comma-separated addresses or networks of the reverse proxies whose "
                             "X-Forwarded-For and X-Forwarded-Proto are trusted (default: none, "
                             "so the client address is the TCP peer's; env NMT_TRUSTED_PROXIES)")
    limits.add_argument("--max-header-bytes", type=_positive_int, metavar="N",
                        default=env.get("NMT_MAX_HEADER_BYTES", "16384"),
                        help="largest request line plus headers; larger is a 400 and the "
                             "connection closes (default: 16384; env NMT_MAX_HEADER_BYTES)")
    limits.add_argument("--keepalive-s", type=_positive_int, metavar="S",
                        default=env.get("NMT_KEEPALIVE_S", "5"),
                        help="close a connection idle this long after a response, or whose "
                             "request head is not complete this long after it opened or its "
                             "previous response (default: 5; env NMT_KEEPALIVE_S)")
    limits.add_argument("--max-connections", type=_positive_int, metavar="N",
                        default=env.get("NMT_MAX_CONNECTIONS", "512"),
                        help="open connections (or requests in progress) per worker beyond "
                             "which new requests get 503 (default: 512; env NMT_MAX_CONNECTIONS)")
    limits.add_argument("--body-timeout-s", type=_positive_float, metavar="S",
                        help="408 when a request body has not fully arrived this long after its "
                             "head (default: 20; env NMT_BODY_TIMEOUT_S)")
    limits.add_argument("--graceful-shutdown-s", type=_positive_int, metavar="S",
                        default=env.get("NMT_GRACEFUL_SHUTDOWN_S", "30"),
                        help="on SIGTERM, how long requests in progress may finish before "
                             "their connections are closed (default: 30; env "
                             "NMT_GRACEFUL_SHUTDOWN_S)")


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (argparse also applies it to the env defaults above)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text}")
    return value


def settings_env(args: argparse.Namespace) -> dict[str, str]:
    """The NMT_* variables that carry the given options to the service's settings."""
    env: dict[str, str] = {"NMT_LOG_LEVEL": args.log_level, "NMT_WORKERS": str(args.workers)}
    if args.model:
        env["NMT_MODELS"] = json.dumps([str(Path(m).resolve()) for m in args.model])
    if args.models_root:
        env["NMT_MODELS_ROOT"] = args.models_root
    if args.device:
        env["NMT_DEVICE"] = args.device
    if args.precision:
        env["NMT_PRECISION"] = args.precision
    if args.model_processes is not None:
        env["NMT_MODEL_PROCESSES"] = str(args.model_processes)
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
    if args.body_timeout_s is not None:
        env["NMT_BODY_TIMEOUT_S"] = str(args.body_timeout_s)
    return env


def uvicorn_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments `run` gives uvicorn.run.

    Forwarded headers are trusted only from `--forwarded-allow-ips` (uvicorn's own default
    trusts 127.0.0.1, so a client on the same host could pick any address, and with it a fresh
    rate-limit window, per request). Without trusted proxies uvicorn's proxy-headers middleware is
    off and the client address is always the TCP peer's.
    """
    trusted = [ip.strip() for ip in args.forwarded_allow_ips.split(",") if ip.strip()]
    return {
        "factory": True, "host": args.host, "port": args.port, "workers": args.workers,
        "log_level": args.log_level,
        "http": HTTP_PROTOCOL,
        "h11_max_incomplete_event_size": args.max_header_bytes,
        "timeout_keep_alive": args.keepalive_s,
        "limit_concurrency": args.max_connections,
        "timeout_graceful_shutdown": args.graceful_shutdown_s,
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted,
    }


def find_bundles(models: list[str], models_root: str) -> list[Path]:
    """The bundle directories to serve; fails early, with one clear line, when there is none."""
    from nmt.cli import CommandError

    for model in models:
        if not (Path(model) / BUNDLE_WEIGHTS).is_file():
            raise CommandError(f"--model {model}: not a model bundle (no {BUNDLE_WEIGHTS} inside)")
    if models:
        return [Path(m) for m in models]
    found = sorted(p for p in Path(models_root).glob("*") if (p / BUNDLE_WEIGHTS).is_file())
    if not found:
        raise CommandError(
            f"no model bundles under {models_root}/ (a bundle is a directory holding "
            f"{BUNDLE_WEIGHTS}, written by `nmt train`); pass --model DIR")
    return found


def check_bundles(bundles: list[Path], *, max_parameters: int, skip_bad: bool
                  ) -> tuple[list[Path], dict[str, str]]:
    """Loads each bundle once, as the service will (on the CPU), and drops it again.

    Returns the good bundles and, for each bad one, its name and why (with the bundle's path
    shortened to its name: /ready shows this). Without `skip_bad`, the first bad bundle is a
    CommandError naming it; with it, each bad one is a line on stderr, and none good is an error.
    """
    from nmt.checkpoint import CheckpointError, load_model
    from nmt.cli import CommandError
    from nmt.tokenization import TokenizerError

    good: list[Path] = []
    skipped: dict[str, str] = {}
    for bundle in bundles:
        try:
            loaded = load_model(bundle)
            parameters = sum(p.numel() for p in loaded.model.parameters())
            del loaded
            gc.collect()  # one bundle in memory at a time
            if parameters > max_parameters:
                raise CheckpointError(
                    f"{bundle / BUNDLE_WEIGHTS}: {parameters} parameters are above the limit of "
                    f"{max_parameters} (--max-model-parameters, NMT_MAX_MODEL_PARAMETERS)")
        except (CheckpointError, TokenizerError, OSError) as err:
            if not skip_bad:
                raise CommandError(f"cannot serve {bundle}: {err}") from err
            skipped[bundle.name] = str(err).replace(str(bundle), bundle.name)
            print(f"warning: skipping model bundle {bundle}: {err}", file=sys.stderr)
            continue
        good.append(bundle)
    if not good:
        raise CommandError(f"no model bundle could be loaded ({len(skipped)} skipped)")
    return good, skipped


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


def _check_settings() -> None:
    """The NMT_* variables must make valid settings before uvicorn starts: one line naming each
    bad variable, exit status 2, instead of a traceback from every worker."""
    from pydantic import ValidationError

    from nmt.cli import CommandError
    from service.settings import ServiceSettings

    try:
        ServiceSettings()
    except ValidationError as err:
        bad = "; ".join(f"NMT_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
                        for e in err.errors())
        raise CommandError(f"bad setting: {bad}") from None


def _check_redis() -> None:
    """With NMT_REDIS_URL set, Redis must answer before any worker starts: one line and exit
    status 2 here, where uvicorn's supervisor of N workers would exit 0 once they all fail."""
    url = os.environ.get("NMT_REDIS_URL", "").strip()
    if not url:
        return
    from nmt.cli import CommandError
    from service.access import RedisWindows, SharedLimitsError  # only when asked for

    try:
        RedisWindows(url, prefix=os.environ.get("NMT_REDIS_PREFIX", "nmt"),
                     timeout_s=float(os.environ.get("NMT_REDIS_TIMEOUT_S", "0.5")))
    except (SharedLimitsError, ValueError) as err:
        raise CommandError(str(err)) from None


def run(args: argparse.Namespace) -> None:
    from nmt.cli import CommandError

    if args.workers < 1:
        raise CommandError("--workers must be at least 1")
    if args.model_processes is not None and args.model_processes < 0:
        raise CommandError("--model-processes must be 0 (decode in the server process) or more")
    check_port(args.host, args.port)
    env = settings_env(args)
    os.environ.update(env)
    _check_settings()
    _check_redis()
    bundles = find_bundles(args.model or _env_list(os.environ.get("NMT_MODELS", "")),
                           os.environ.get("NMT_MODELS_ROOT", "models"))
    good, skipped = check_bundles(bundles, max_parameters=args.max_model_parameters,
                                  skip_bad=args.skip_bad_models)
    if skipped:
        os.environ["NMT_MODELS"] = json.dumps([str(p.resolve()) for p in good])
        os.environ["NMT_SKIPPED_MODELS"] = json.dumps(skipped)

    import uvicorn  # here, not at the top: `nmt --help` and training need no web server

    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        with tempfile.TemporaryDirectory(prefix="nmt-metrics-") as metrics_dir:
            # Before the workers start: each one's metrics go to files here, and /metrics sums
            # them (service/metrics.py). A fresh directory, so no old process's counts linger
            # (one set by the caller is used as it is: the caller cleans it).
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
            uvicorn.run(APP_FACTORY, **uvicorn_options(args))
        return
    uvicorn.run(APP_FACTORY, **uvicorn_options(args))
