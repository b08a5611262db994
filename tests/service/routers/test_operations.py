"""Operations routes, the web page and error shapes."""

from __future__ import annotations

from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import ServiceSettings


def test_health_ready_before_models_load():
    # No override and no lifespan: the models are "still loading".
    client = TestClient(create_app(ServiceSettings(models_root="unused")))
    assert client.get("/health").json() == {"status": "ok"}
    r = client.get("/ready")
    assert r.status_code == 503
    assert r.headers["Retry-After"]
    assert client.post("/translate", json={"q": "a", "source": "de", "target": "en"}
                       ).status_code == 503


def test_ready_and_metrics(served):
    assert served.client.get("/ready").json() == {"status": "ready"}
    served.client.post("/translate", json={"q": "a", "source": "de", "target": "en"})
    served.client.post("/translate", json={"source": "de"})
    text = served.client.get("/metrics").text
    assert 'nmt_http_requests_total{method="POST",route="/translate",status="200"} 1.0' in text
    assert 'nmt_http_requests_total{method="POST",route="/translate",status="400"} 1.0' in text
    assert 'nmt_batch_requests_count{model="fake-de-en"} 1.0' in text
    assert 'nmt_tokens_total{model="fake-de-en",side="source"} 2.0' in text
    assert "nmt_queue_depth" in text and "nmt_http_request_seconds_bucket" in text


def test_many_apps_have_separate_metrics(serve_fakes):
    a, b = serve_fakes(), serve_fakes()
    a.client.get("/health")
    assert 'route="/health"' in a.client.get("/metrics").text
    assert 'route="/health"' not in b.client.get("/metrics").text


def test_unknown_route_and_method_are_json_errors(served):
    r = served.client.get("/nope/../../etc/passwd")
    assert r.status_code == 404
    assert r.json() == {"error": "Not Found"}
    assert served.client.get("/translate").status_code == 405
    assert 'route="unmatched"' in served.client.get("/metrics").text


def test_openapi_docs(served):
    assert served.client.get("/docs").status_code == 200
    paths = served.client.get("/openapi.json").json()["paths"]
    assert {"/translate", "/detect", "/languages", "/v1/translate", "/v1/models", "/health",
            "/ready", "/metrics"} <= set(paths)
    assert "application/x-www-form-urlencoded" in paths["/translate"]["post"]["requestBody"][
        "content"]


def test_web_page_and_assets(served):
    r = served.client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "/static/app.js" in r.text and "http" not in r.text.split("<body>")[1].split(
        "</body>")[0].replace("href=\"/", "")  # no CDN
    assert served.client.get("/static/app.js").headers["content-type"].startswith(
        "text/javascript")
    assert served.client.get("/static/style.css").status_code == 200
    assert served.client.get("/static/..%2fmain.py").status_code == 404
    assert served.client.get("/static/index.html").status_code == 404


def test_cors_off_by_default_and_configurable(serve_fakes):
    headers = {"Origin": "https://example.org", "Access-Control-Request-Method": "POST"}
    off = serve_fakes().client.options("/translate", headers=headers)
    assert "access-control-allow-origin" not in off.headers
    on = serve_fakes(cors_origins=["https://example.org"]).client.options("/translate",
                                                                            headers=headers)
    assert on.headers["access-control-allow-origin"] == "https://example.org"
