"""deploy/: the compose file and Kubernetes manifests pass yamllint, name only real settings with
values the service accepts, and agree with each other and with nginx.conf, whose limits are the
app's; and the real nginx accepts nginx.conf (`nginx -t`, the upstream names pointed at
127.0.0.1). No container engine or cluster runs here, so this is what can be checked of them."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

from nmt.cli import build_parser
from service.main import create_app
from service.settings import ServiceSettings
from service.uploads import FORM_ROOM, UPLOAD_PATHS
from tests.support.system import nginx_command, render_nginx_conf, require_program

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
YAML_FILES = sorted([*DEPLOY.glob("*.yaml"), *(DEPLOY / "k8s").glob("*.yaml")])


# ---- nginx.conf, read as nested blocks of directives -------------------------------------------

Directive = tuple[str, list[str], list[Any]]  # name, arguments, the block's directives


def parse_nginx(text: str) -> list[Directive]:
    tokens = re.findall(r'"(?:[^"\\]|\\.)*"|[{};]|[^\s{};"]+', re.sub(r"#[^\n]*", "", text))
    stack: list[list[Directive]] = [[]]
    words: list[str] = []
    for token in tokens:
        if token == ";":
            stack[-1].append((words[0], words[1:], []))
            words = []
        elif token == "{":
            block: list[Directive] = []
            stack[-1].append((words[0], words[1:], block))
            stack.append(block)
            words = []
        elif token == "}":
            stack.pop()
        else:
            words.append(token.strip('"'))
    assert len(stack) == 1 and not words, "unbalanced nginx.conf"
    return stack[0]


def one(block: list[Directive], name: str, *args: str) -> Directive:
    found = [d for d in block if d[0] == name and tuple(d[1][:len(args)]) == args]
    assert len(found) == 1, f"{name} {' '.join(args)}: {len(found)} in nginx.conf"
    return found[0]


def value(block: list[Directive], name: str) -> list[str]:
    return one(block, name)[1]


def size(text: str) -> int:
    units = {"k": 1024, "m": 1024 ** 2}
    return int(text[:-1]) * units[text[-1].lower()] if text[-1].lower() in units else int(text)


def seconds(text: str) -> float:
    assert text.endswith("s") and text[:-1].isdigit(), text
    return float(text[:-1])


@pytest.fixture(scope="module")
def nginx() -> dict[str, Any]:
    http = one(parse_nginx((DEPLOY / "nginx.conf").read_text()), "http")[2]
    server = one(http, "server")[2]
    return {"http": http, "server": server, "upstream": one(http, "upstream", "nmt")[2]}


# ---- the YAML files ----------------------------------------------------------------------------

def load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(DEPLOY / "compose.yaml")[0]


@pytest.fixture(scope="module")
def k8s() -> dict[tuple[str, str], dict[str, Any]]:
    docs = [doc for path in sorted((DEPLOY / "k8s").glob("*.yaml")) for doc in load(path)]
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in docs
            if doc["kind"] != "Kustomization"}


def replicas_of(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in compose["services"].items()
            if "NMT_PORT" in svc.get("environment", {})}


def container(k8s: dict, name: str) -> dict[str, Any]:
    [c] = k8s[("Deployment", name)]["spec"]["template"]["spec"]["containers"]
    return c


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> ServiceSettings:
    """ServiceSettings as a replica with environment `env` (and nothing else) reads them."""
    for name in [n for n in os.environ if n.startswith("NMT_")]:
        monkeypatch.delenv(name)
    for name, text in env.items():
        monkeypatch.setenv(name, str(text))
    return ServiceSettings()


def serve_env_names() -> set[str]:
    """The NMT_* variables `nmt serve` itself reads (uvicorn's options): its help names them."""
    parser = build_parser()
    [sub] = [a for a in parser._actions if hasattr(a, "choices") and a.choices]
    serve = sub.choices["serve"]
    return {name for action in serve._actions
            for name in re.findall(r"env (NMT_[A-Z0-9_]+)", " ".join((action.help or "").split()))}


SETTING_NAMES = {f"NMT_{name.upper()}" for name in ServiceSettings.model_fields}


def environments(compose: dict, k8s: dict) -> dict[str, dict[str, str]]:
    envs = {f"compose.yaml {name}": {k: str(v) for k, v in svc["environment"].items()}
            for name, svc in replicas_of(compose).items()}
    envs["k8s/configmap.yaml"] = dict(k8s[("ConfigMap", "nmt-settings")]["data"])
    return envs


# ---- the tests ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_yamllint_is_clean(path: Path) -> None:
    config = YamlLintConfig(file=str(DEPLOY / ".yamllint.yaml"))
    problems = [f"{path.name}:{p.line}:{p.column} {p.desc} ({p.rule})"
                for p in linter.run(path.read_text(), config, str(path))]
    assert not problems, "\n".join(problems)


def test_every_setting_named_exists_and_its_value_parses(compose, k8s, monkeypatch) -> None:
    known = SETTING_NAMES | serve_env_names()
    assert {"NMT_TRUSTED_PROXIES", "NMT_KEEPALIVE_S", "NMT_PORT"} <= known  # the help was read
    for where, env in environments(compose, k8s).items():
        unknown = sorted(n for n in env if n.startswith("NMT_") and n not in known)
        assert not unknown, f"{where}: not settings of the service: {unknown}"
        settings_from(env, monkeypatch)  # raises on a value the service refuses
        args = build_parser().parse_args(["serve"])  # the parser reads its defaults from NMT_*
        assert str(args.port) == env["NMT_PORT"]
    # API keys are secrets: never in the ConfigMap; the deployment reads them from a Secret.
    assert "NMT_API_KEYS" not in k8s[("ConfigMap", "nmt-settings")]["data"]
    [keys] = [e for e in container(k8s, "nmt")["env"] if e["name"] == "NMT_API_KEYS"]
    assert keys["valueFrom"]["secretKeyRef"]["optional"] is True


def test_nginx_limits_are_the_apps(nginx, compose, k8s, monkeypatch) -> None:
    http, server, upstream = nginx["http"], nginx["server"], nginx["upstream"]
    for where, env in environments(compose, k8s).items():
        s = settings_from(env, monkeypatch)
        cli = build_parser().parse_args(["serve"])
        assert size(value(http, "client_max_body_size")[0]) == s.max_body_bytes, where
        for path in UPLOAD_PATHS:
            block = one(server, "location", "=", path)[2]
            assert size(value(block, "client_max_body_size")[0]) == \
                s.max_file_bytes + FORM_ROOM, (where, path)
            assert seconds(value(block, "proxy_read_timeout")[0]) > s.request_timeout_s
        # One large header buffer of NMT_MAX_HEADER_BYTES: nginx reads no larger head.
        buffers = value(http, "large_client_header_buffers")
        assert buffers == ["1", f"{cli.max_header_bytes // 1024}k"], buffers
        assert size(value(http, "client_header_buffer_size")[0]) < cli.max_header_bytes
        assert seconds(value(http, "client_header_timeout")[0]) == cli.keepalive_s, where
        assert seconds(value(http, "keepalive_timeout")[0]) == cli.keepalive_s, where
        assert seconds(value(http, "client_body_timeout")[0]) == s.body_timeout_s, where
        # nginx drops an idle upstream connection before the app would close it.
        assert seconds(value(upstream, "keepalive_timeout")[0]) < cli.keepalive_s
        assert seconds(value(server, "proxy_read_timeout")[0]) > s.request_timeout_s
        servers = [d[1] for d in upstream if d[0] == "server"]
        assert all(f"max_conns={cli.max_connections}" in args for args in servers), servers
        limit = {d[1][0]: int(d[1][1]) for d in http if d[0] == "limit_conn"}
        assert limit["per_server"] == len(servers) * cli.max_connections
        assert value(http, "limit_conn_status") == ["503"]  # as the app's connection cap
        # A request rate per address above what a replica serves (tests/deploy/test_replicas.py
        # floods it), refused with 429 like the app's own rate limit.
        assert value(http, "limit_req") == ["zone=per_client_rate", "burst=400", "nodelay"]
        assert value(http, "limit_req_status") == ["429"]
        zone = value(http, "limit_req_zone")
        assert zone[0] == "$binary_remote_addr" and "rate=200r/s" in zone, zone


def test_nginx_forwards_the_peer_address_and_retries_a_dead_replica(nginx) -> None:
    server = nginx["server"]
    headers = {d[1][0]: d[1][1] for d in server if d[0] == "proxy_set_header"}
    # Overwritten, not appended to: what a client sends as X-Forwarded-For never reaches the app.
    assert headers["X-Forwarded-For"] == "$remote_addr"
    assert headers["Connection"] == "" and value(server, "proxy_http_version") == ["1.1"]
    retry = value(server, "proxy_next_upstream")
    assert {"error", "non_idempotent"} <= set(retry) and "http_503" not in retry
    assert one(server, "location", "=", "/metrics")[2] == [("return", ["404"], [])]


def test_compose_topology(compose, nginx) -> None:
    services = compose["services"]
    replicas = replicas_of(compose)
    assert sorted(replicas) == ["nmt-1", "nmt-2"]
    upstream_servers = [d[1][0] for d in nginx["upstream"] if d[0] == "server"]
    assert upstream_servers == [f"{name}:{svc['environment']['NMT_PORT']}"
                                for name, svc in sorted(replicas.items())]
    network = compose["networks"]["backend"]["ipam"]["config"][0]["subnet"]
    nginx_ip = services["nginx"]["networks"]["backend"]["ipv4_address"]
    assert nginx_ip.rsplit(".", 1)[0] == network.rsplit(".", 1)[0]
    redis_port = 6379
    for name, svc in replicas.items():
        assert svc["build"] == {"context": "..", "dockerfile": "Dockerfile"}
        assert (DEPLOY / svc["build"]["context"] / svc["build"]["dockerfile"]).is_file()
        env = svc["environment"]
        # The replicas trust X-Forwarded-For from nginx only.
        assert env["NMT_TRUSTED_PROXIES"] == nginx_ip, name
        url = urlsplit(env["NMT_REDIS_URL"])
        assert (url.hostname, url.port) == ("redis", redis_port) and url.hostname in services
        assert svc["depends_on"]["redis"]["condition"] == "service_healthy"
        assert services["nginx"]["depends_on"][name]["condition"] == "service_healthy"
        assert "files:/tmp" in svc["volumes"] and env["NMT_FILES_DIR"].startswith("/tmp/")
        assert svc["networks"]["backend"]["ipv4_address"] != nginx_ip
    # The image installs the redis extra the shared limits need.
    assert '"./.[redis]"' in (REPO / "Dockerfile").read_text()
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in services["nginx"]["volumes"]
    assert (DEPLOY / "nginx.conf").is_file()
    assert services["nginx"]["image"].startswith("nginx:")
    assert services["redis"]["image"].startswith("redis:")
    assert "--save" in services["redis"]["command"]


def test_kubernetes_manifests(k8s) -> None:
    app_paths = set(create_app(ServiceSettings(models_root="unused")).openapi()["paths"])
    settings = k8s[("ConfigMap", "nmt-settings")]["data"]
    deployment = k8s[("Deployment", "nmt")]
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    c = container(k8s, "nmt")
    assert c["envFrom"] == [{"configMapRef": {"name": "nmt-settings"}}]
    [port] = c["ports"]
    assert port["containerPort"] == int(settings["NMT_PORT"]) and settings["NMT_HOST"] == "0.0.0.0"
    assert c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": port["name"]}
    assert c["livenessProbe"]["httpGet"] == {"path": "/health", "port": port["name"]}
    assert c["startupProbe"]["httpGet"]["path"] == "/health"
    assert {"/ready", "/health"} <= app_paths
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(c["resources"][kind]), kind
    grace = pod["spec"]["terminationGracePeriodSeconds"]
    prestop = int(shlex.join(c["lifecycle"]["preStop"]["exec"]["command"]).split()[-1])
    assert grace > prestop + int(settings["NMT_GRACEFUL_SHUTDOWN_S"])
    assert pod["spec"]["securityContext"]["runAsUser"] == 10001  # the image's USER
    assert c["args"] == ["nmt", "serve", "--host", "0.0.0.0"]

    service = k8s[("Service", "nmt")]["spec"]
    assert service["selector"].items() <= labels.items()
    assert service["ports"][0]["targetPort"] == port["name"]

    redis_url = urlsplit(settings["NMT_REDIS_URL"])
    redis_service = k8s[("Service", redis_url.hostname)]["spec"]
    assert redis_service["ports"][0]["port"] == redis_url.port
    redis_pod = k8s[("Deployment", redis_url.hostname)]["spec"]["template"]
    assert redis_service["selector"].items() <= redis_pod["metadata"]["labels"].items()
    redis_container = container(k8s, redis_url.hostname)
    assert redis_container["ports"][0]["containerPort"] == redis_url.port
    assert {"requests", "limits"} <= set(redis_container["resources"])

    hpa = k8s[("HorizontalPodAutoscaler", "nmt")]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "nmt"}
    assert hpa["minReplicas"] == deployment["spec"]["replicas"] <= hpa["maxReplicas"]
    kustomization = load(DEPLOY / "k8s" / "kustomization.yaml")[0]
    assert sorted(kustomization["resources"]) == sorted(
        p.name for p in (DEPLOY / "k8s").glob("*.yaml") if p.name != "kustomization.yaml")


def test_nginx_accepts_the_config(tmp_path: Path) -> None:
    nginx = require_program("nginx")
    conf = render_nginx_conf(tmp_path, port=18080, upstreams=[18081, 18082])
    done = subprocess.run(nginx_command(nginx, conf, "-t"), capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    assert "test is successful" in done.stderr
    assert "[warn]" not in done.stderr and "[emerg]" not in done.stderr, done.stderr
