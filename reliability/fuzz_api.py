"""Reliability: API fuzzing. Schemathesis over the app's own OpenAPI schema, plus hand-made hostile
requests, against a real tiny bundle served through the real Translator.

    python reliability/fuzz_api.py                          # >= 10,000 requests, `nmt serve`
    python reliability/fuzz_api.py --examples 20 --rounds 1  # a quick look

Every answer must be < 500, arrive within the timeout, and every 4xx must be JSON
`{"error": "<message>"}` without a stack trace or a file path. Afterwards the server must still
translate a known sentence exactly as the Translator does. Exit status 1 on any violation.
tests/reliability/test_api_fuzz.py runs a bounded, seeded version of the same code.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SENTENCES = ["ein hund rennt", "der mann schläft", "eine frau liest ein buch", "zwei katzen",
             "der hund und die katze", "a dog runs", "the man sleeps", "a woman reads a book"]
API_KEY = "fuzz-key-1"
PROBE = {"texts": ["ein hund rennt"], "source": "de", "target": "en", "beam_size": 2}
# What an error body must never show: a traceback, a source file, an absolute path.
_LEAK = re.compile(r"Traceback|File \"|\.py\b|/(?:home|root|tmp|work|usr|srv|app)/")


def make_tiny_bundle(out_dir: Path) -> Path:
    """A de->en bundle with random weights (as tests/service/conftest.py makes one)."""
    import torch

    from nmt.checkpoint import export_bundle
    from nmt.config import config_from_dict
    from nmt.models.seq2seq import build_model
    from nmt.tokenization import train_tokenizer

    torch.manual_seed(0)
    config = config_from_dict({
        "data": {"train_src": "x", "train_tgt": "y", "src_lang": "de", "tgt_lang": "en"},
        "model": {"cell": "gru", "emb_dim": 8, "enc_hidden": 8, "dec_hidden": 8, "attn_dim": 8,
                  "dropout": 0.0, "emb_dropout": 0.0},
        "decode": {"beam_size": 2, "max_len_a": 1.0, "max_len_b": 3},
    })
    tokenizer = train_tokenizer(SENTENCES * 20, vocab_size=40)
    model = build_model(config.model, src_vocab_size=tokenizer.vocab_size,
                        tgt_vocab_size=tokenizer.vocab_size)
    return export_bundle(out_dir, config=config, state_dict=model.state_dict(),
                         src_tokenizer=tokenizer, tgt_tokenizer=tokenizer, metadata={})


# ---- checking answers ----------------------------------------------------------------------

@dataclass
class Tally:
    """Requests sent, statuses seen, and every violation (capped) with what caused it."""

    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    slowest_s: float = 0.0
    slowest: str = ""

    def record(self, label: str, status: int, headers: Any, body: bytes, elapsed_s: float
               ) -> None:
        self.requests += 1
        self.statuses[status] += 1
        if elapsed_s > self.slowest_s:
            self.slowest_s, self.slowest = elapsed_s, f"{label} ({status})"
        for problem in problems(status, headers, body):
            if len(self.violations) < 200:
                self.violations.append(f"{label}: {status}: {problem}: {body[:200]!r}")

    def merge(self, other: Tally) -> None:
        self.requests += other.requests
        self.statuses.update(other.statuses)
        self.violations.extend(other.violations)
        if other.slowest_s > self.slowest_s:
            self.slowest_s, self.slowest = other.slowest_s, other.slowest


def problems(status: int, headers: Any, body: bytes) -> list[str]:
    """What is wrong with one answer (empty when it is fine)."""
    found = []
    if status >= 500:
        found.append("server error")
    if status >= 400:
        try:
            data = json.loads(body)
        except ValueError:
            return [*found, "error body is not JSON"]
        if not (isinstance(data, dict) and list(data) == ["error"]
                and isinstance(data["error"], str) and data["error"]):
            found.append('error body is not {"error": "<message>"}')
        elif _LEAK.search(data["error"]):
            found.append("error message leaks a trace or a path")
    if status in (429, 503) and "retry-after" not in {k.lower() for k in headers}:
        found.append("no Retry-After")
    return found


# ---- hand-made hostile requests ------------------------------------------------------------

@dataclass(frozen=True)
class Hostile:
    label: str
    method: str
    path: str
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Statuses this request may get; empty: any status below 500.
    expect: tuple[int, ...] = ()


JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
ODD_TEXTS = {
    "empty": "", "spaces": "   \t\n ", "nul": "a\x00b", "controls": "".join(map(chr, range(32))),
    "del-and-bidi": "x\x7f\u200b\u202e\u2066abc\ufeff", "long-word": "a" * 4_000,
    "rtl": "مرحبا بالعالم שלום עולם", "combining": "e" + "\u0301" * 2_000,
    "zalgo": "H̸̡̪̯ͨ͊̽̅̾̎Ȩ̬̩̾͛ͪ̈́̀́͘ ̶̧̨̱̹̭̯ͧ̾ͬC̷̙̲̝͖ͭ̏ͥͮ͟Oͮ͏̮̪̝͍", "emoji": "🐶🏃‍♂️🏳️‍🌈👍🏽🇩🇪" * 100,
    "html": "<script>alert(1)</script><b onclick='x()'>Hund</b>", "cjk": "一只狗在跑。犬が走る。",
    "entities": "&amp; &#0; &#x110000; &bogus; <!-- <![CDATA[ x ]]>", "newlines": "a\r\nb\rc\nd",
    "private-use": "\ue000\U000f0000\U0010fffd", "nonchars": "\ufffe\uffff",
    "mixed": "Ein Hund 🐶 läuft → schnell!!! ?!?! ... ---",
}


def _body(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def hostile_requests(rng: random.Random) -> Iterator[Hostile]:
    """One pass over every hostile request kind; random parts are drawn from `rng`."""
    lt = {"q": "ein hund", "source": "de", "target": "en"}
    v1 = {"texts": ["ein hund"], "source": "de", "target": "en"}
    # Invalid JSON, and JSON that is not an object.
    for raw in [b'{"q": "a",', b"not json", b"{'q': 'a'}", b'{"q": "a"} trailing', b"\x00\x01",
                b"null", b"[]", b'"text"', b"123", b"{" * 50, b'{"q": "\\ud800"}']:
        for path in ("/translate", "/detect", "/v1/translate"):
            yield Hostile(f"bad json {raw[:12]!r}", "POST", path, raw, JSON, (400, 403, 422))
    # Deep nesting and huge numbers (the JSON parser's own limits).
    depth = rng.randint(2_000, 100_000)
    for path in ("/translate", "/detect", "/v1/translate"):
        yield Hostile("deep list", "POST", path, b"[" * depth + b"]" * depth, JSON, (400, 422))
        yield Hostile("deep object", "POST", path,
                      b'{"q":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}", JSON, (400, 422))
        yield Hostile("huge integer", "POST", path, b'{"q":"a","source":"de","target":"en",'
                      b'"alternatives":' + b"9" * 5_000 + b',"beam_size":' + b"9" * 5_000 + b"}",
                      JSON, (400, 422))
    # Invalid UTF-8, in JSON and in form bodies.
    bad = bytes(rng.choice([0x80, 0xC3, 0xED, 0xF8, 0xFE, 0xFF]) for _ in range(4))
    yield Hostile("json bad utf-8", "POST", "/translate",
                  b'{"q":"' + bad + b'","source":"de","target":"en"}', JSON, (400,))
    yield Hostile("json bad utf-8", "POST", "/v1/translate",
                  b'{"texts":["' + bad + b'"],"source":"de","target":"en"}', JSON, (400,))
    yield Hostile("form bad utf-8", "POST", "/translate", b"q=" + bad + b"&source=de&target=en",
                  FORM, (400,))
    yield Hostile("form bad %-escape", "POST", "/translate", b"q=%ff%fe&source=de&target=en",
                  FORM, (400,))
    # Wrong types, field by field.
    for key, value in [("q", 5), ("q", {"a": 1}), ("q", [["a"]]), ("q", [1, 2]), ("q", None),
                       ("source", 5), ("source", ["de"]), ("target", None), ("format", "pdf"),
                       ("alternatives", -1), ("alternatives", 1e30), ("alternatives", "x"),
                       ("alternatives", 33), ("api_key", 123), ("api_key", ["k"])]:
        yield Hostile(f"lt {key}={value!r}", "POST", "/translate", _body({**lt, key: value}),
                      JSON, (400,))
    for key, value in [("texts", "one"), ("texts", []), ("texts", [1]), ("texts", None),
                       ("source", 5), ("beam_size", -1), ("beam_size", 0), ("beam_size", 10**12),
                       ("beam_size", 9), ("beam_size", "5x"), ("beam_size", 2.5), ("nbest", 0),
                       ("nbest", -5), ("nbest", 10**9), ("nbest", 7), ("length_penalty", -1),
                       ("length_penalty", 1e308), ("return_scores", "maybe"), ("evil", 1)]:
        yield Hostile(f"v1 {key}={value!r}", "POST", "/v1/translate", _body({**v1, key: value}),
                      JSON, (400, 422))
    # Unknown or malformed language codes.
    for src, tgt in [("xx", "en"), ("de", "zz"), ("auto", "de"), ("../etc", "en"), ("de\n", "en"),
                     ("DE", "EN"), ("d" * 17, "en"), ("dé", "en"), ("", "en")]:
        yield Hostile(f"lt pair {src!r}->{tgt!r}", "POST", "/translate",
                      _body({**lt, "source": src, "target": tgt}), JSON, (400,))
        yield Hostile(f"v1 pair {src!r}->{tgt!r}", "POST", "/v1/translate",
                      _body({**v1, "source": src, "target": tgt}), JSON, (400, 422))
    # Odd but valid texts: these must translate (200), in every API and format.
    for name, text in ODD_TEXTS.items():
        fmt = rng.choice(["text", "html"])
        expect_lt = (400,) if not text else (200,)  # LibreTranslate: an empty q is "missing"
        yield Hostile(f"lt text {name} ({fmt})", "POST", "/translate",
                      _body({**lt, "q": text, "format": fmt, "alternatives": rng.randint(0, 5)}),
                      JSON, expect_lt)
        yield Hostile(f"lt list {name}", "POST", "/translate",
                      _body({**lt, "q": [text, "ein hund", text]}), JSON, (200,))
        yield Hostile(f"v1 text {name}", "POST", "/v1/translate",
                      _body({**v1, "texts": [text, text.strip()], "beam_size": rng.randint(1, 8),
                             "nbest": rng.randint(1, 3), "return_attention": rng.random() < .5}),
                      JSON, (200,))
        yield Hostile(f"detect {name}", "POST", "/detect", _body({"q": text}),
                      JSON, (400,) if not text else (200,))
        yield Hostile(f"auto {name}", "POST", "/translate",
                      _body({**lt, "q": text, "source": "auto"}), JSON, expect_lt)
    # Limits: texts, characters, body size (declared and streamed), form field counts.
    yield Hostile("65 texts", "POST", "/v1/translate", _body({**v1, "texts": ["a"] * 65}), JSON,
                  (400,))
    yield Hostile("5001 chars", "POST", "/translate", _body({**lt, "q": "a" * 5_001}), JSON,
                  (400,))
    yield Hostile("20001 chars", "POST", "/v1/translate",
                  _body({**v1, "texts": ["a " * 2_400] * 9}), JSON, (400,))
    yield Hostile("1.1 MB body", "POST", "/translate", _body({**lt, "q": "a" * 1_100_000}), JSON,
                  (413,))
    yield Hostile("many form fields", "POST", "/translate",
                  "&".join(f"f{i}=1" for i in range(3_000)).encode() + b"&q=a&source=de&target=en",
                  FORM, (400,))
    yield Hostile("many q fields", "POST", "/translate",
                  b"&".join([b"q=a"] * 500) + b"&source=de&target=en", FORM, (400,))
    yield Hostile("broken multipart", "POST", "/translate", b"--xx\r\nbroken",
                  {"Content-Type": "multipart/form-data"}, (400,))
    yield Hostile("multipart bad utf-8", "POST", "/translate",
                  b'--xx\r\nContent-Disposition: form-data; name="q"\r\n\r\n' + bad
                  + b'\r\n--xx\r\nContent-Disposition: form-data; name="source"\r\n\r\nde'
                  b'\r\n--xx\r\nContent-Disposition: form-data; name="target"\r\n\r\nen'
                  b"\r\n--xx--\r\n", {"Content-Type": "multipart/form-data; boundary=xx"}, (400,))
    # Methods, paths and static files that do not exist.
    for method, path in [("GET", "/translate"), ("PUT", "/v1/translate"), ("DELETE", "/languages"),
                         ("GET", "/nope"), ("GET", "/static/../../etc/passwd"),
                         ("GET", "/static/%2e%2e%2fpyproject.toml"), ("GET", "/static/app.js.map"),
                         ("POST", "/v1/models")]:
        yield Hostile(f"{method} {path}", method, path, None, {}, (404, 405))


def key_requests(rng: random.Random) -> Iterator[Hostile]:
    """For a server with API_KEY configured: missing, wrong and malformed keys are 403."""
    lt = {"q": "ein hund", "source": "de", "target": "en"}
    v1 = _body({"texts": ["ein hund"], "source": "de", "target": "en"})
    wrong = "".join(rng.choice("abcdef0123456789") for _ in range(len(API_KEY)))
    for key in [None, "", wrong, API_KEY[:-1], API_KEY + " ", API_KEY.upper(), 123, ["k"]]:
        body = dict(lt) if key is None else {**lt, "api_key": key}
        yield Hostile(f"lt key {key!r}", "POST", "/translate", _body(body), JSON, (403,))
        yield Hostile(f"detect key {key!r}", "POST", "/detect", _body({"q": "a", "api_key": key}),
                      JSON, (403,))
    yield Hostile("lt key lone surrogate", "POST", "/translate",
                  b'{"q":"a","source":"de","target":"en","api_key":"k\\ud800"}', JSON, (403,))
    for headers in [{}, {"X-API-Key": wrong}, {"Authorization": f"Bearer {wrong}"},
                    {"Authorization": f"Basic {API_KEY}"}, {"X-API-Key": ""}]:
        yield Hostile(f"v1 key headers {sorted(headers)}", "POST", "/v1/translate", v1,
                      {**JSON, **headers}, (403,))
    yield Hostile("v1 good key", "POST", "/v1/translate", v1, {**JSON, "X-API-Key": API_KEY},
                  (200,))
    yield Hostile("lt good key", "POST", "/translate", _body({**lt, "api_key": API_KEY}), JSON,
                  (200,))


Send = Callable[[str, str, bytes | None, dict[str, str]], tuple[int, Any, bytes]]


def run_hostile(send: Send, cases: Iterator[Hostile], tally: Tally) -> None:
    for case in cases:
        start = time.perf_counter()
        status, headers, body = send(case.method, case.path, case.content, case.headers)
        tally.record(case.label, status, headers, body, time.perf_counter() - start)
        if case.expect and status not in case.expect:
            tally.violations.append(f"{case.label}: got {status}, expected one of "
                                    f"{list(case.expect)}: {body[:200]!r}")


# ---- schemathesis --------------------------------------------------------------------------

def run_schemathesis(schema: Any, *, examples: int, seed: int, tally: Tally,
                     call: Callable[[Any], Any]) -> None:
    """Every operation, positive and negative generation; half of the cases get a served pair."""
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in GenerationMode:
            try:
                _schemathesis_test(operation, mode, examples, seed, tally, call)()
            except Unsatisfiable:  # an operation without inputs has no negative cases
                pass


def _schemathesis_test(operation: Any, mode: Any, examples: int, seed: int, tally: Tally,
                       call: Callable[[Any], Any]) -> Callable[[], None]:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hyp_seed
    from hypothesis import strategies as st

    label = f"schemathesis {mode.value} {operation.method.upper()} {operation.path}"

    @hyp_seed(seed)
    @settings(max_examples=examples, deadline=None, database=None, print_blob=False,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(mode), served_pair=st.booleans())
    def check(case: Any, served_pair: bool) -> None:
        if served_pair and isinstance(case.body, dict):
            for key, code in (("source", "de"), ("target", "en")):
                if key in case.body:
                    case.body[key] = code
        start = time.perf_counter()
        response = call(case)
        tally.record(label, response.status_code, response.headers, response.content,
                     time.perf_counter() - start)

    return check


# ---- targets -------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(bundle: Path, log_path: Path, env_extra: dict[str, str]
                 ) -> tuple[subprocess.Popen, str]:
    """`nmt serve --model bundle` on a free port; returns once /ready answers."""
    import httpx

    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "NMT_NUM_THREADS": "1", **env_extra}
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "nmt", "serve", "--model", str(bundle),
                                 "--port", str(port), "--log-level", "warning"],
                                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not become ready")


def expected_probe(bundle: Path) -> str:
    from nmt.translator import Translator

    return Translator.from_checkpoint(bundle).translate(PROBE["texts"], beam_size=2)[0].text


def fuzz_live(bundle: Path, *, examples: int, rounds: int, seed: int, log_dir: Path,
              timeout_s: float = 30.0) -> Tally:
    """Fuzzes `nmt serve` processes (one open, one with API keys and a rate limit)."""
    import httpx
    import schemathesis

    tally = Tally()
    rng = random.Random(seed)
    want = expected_probe(bundle)
    for name, env, cases in [
        # The odd texts must translate: "long-word" ("a" x 4000) is past the default cost
        # limits, which tests/service/test_cost.py covers, so this server allows more.
        ("open", {"NMT_MAX_WAIT_MS": "2", "NMT_MAX_TEXT_TOKENS": "5000",
                  "NMT_MAX_REQUEST_TOKENS": "20000", "NMT_MAX_DECODE_STEPS": "1000000"},
         hostile_requests),
        # Wrong keys are fuzzed here; their rate limit (429) is tested in tests/service.
        ("keys", {"NMT_API_KEYS": API_KEY, "NMT_AUTH_FAILURES_PER_MINUTE": "0"}, key_requests),
    ]:
        proc, url = start_server(bundle, log_dir / f"server-{name}.log", env)
        try:
            with httpx.Client(base_url=url, timeout=timeout_s) as client:

                def send(method: str, path: str, content: bytes | None,
                         headers: dict[str, str]) -> tuple[int, Any, bytes]:
                    r = client.request(method, path, content=content, headers=headers)
                    return r.status_code, r.headers, r.content

                for _ in range(rounds):
                    run_hostile(send, cases(rng), tally)
                if name == "open":
                    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
                    run_schemathesis(schema, examples=examples, seed=seed, tally=tally,
                                     call=lambda case: case.call(timeout=timeout_s))
                check_still_serving(send, want, tally, key=API_KEY if name == "keys" else None)
        finally:
            proc.terminate()
            proc.wait(30)
        if proc.returncode not in (0, -15):
            tally.violations.append(f"server {name} exited with {proc.returncode}")
    return tally


def check_still_serving(send: Send, want: str, tally: Tally, key: str | None = None) -> None:
    """After the fuzzing: /ready is 200 and a known sentence translates as the Translator does."""
    headers = {**JSON, **({"X-API-Key": key} if key else {})}
    status, _, body = send("GET", "/ready", None, {})
    if status != 200:
        tally.violations.append(f"after fuzzing /ready answered {status}")
    status, _, body = send("POST", "/v1/translate", _body(PROBE), headers)
    got = json.loads(body)["results"][0]["text"] if status == 200 else None
    if got != want:
        tally.violations.append(f"after fuzzing the probe gave {status} {got!r}, want {want!r}")


def report(tally: Tally, seconds: float) -> dict[str, Any]:
    return {"requests": tally.requests, "seconds": round(seconds, 1),
            "server_errors": sum(n for s, n in tally.statuses.items() if s >= 500),
            "statuses": dict(sorted(tally.statuses.items())),
            "slowest_s": round(tally.slowest_s, 3), "slowest": tally.slowest,
            "violations": tally.violations[:50]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=700,
                        help="schemathesis examples per operation and generation mode")
    parser.add_argument("--rounds", type=int, default=30, help="passes over the hostile requests")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bundle = make_tiny_bundle(Path(tmp) / "models" / "tiny-de-en")
        start = time.perf_counter()
        tally = fuzz_live(bundle, examples=args.examples, rounds=args.rounds, seed=args.seed,
                          log_dir=Path(tmp))
        summary = report(tally, time.perf_counter() - start)
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    sys.exit(1 if tally.violations else 0)


if __name__ == "__main__":
    main()
