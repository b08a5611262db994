"""Benchmarks: document translation: a 20-page .docx and a 1,000-cue .srt through the CLI path
(nmt.documents + Translator) and through /translate_file on a live `nmt serve`, and the p99 of
single-sentence /translate calls while a document is in flight against an idle server.

    python -m benchmarks.documents --model models/multi30k-de-en --threads 1
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import docx
import httpx

from nmt.documents.base import translator_function
from nmt.documents.formats import translate_document
from nmt.translator import Translator

SENTENCES = ["Ein Mann fährt Fahrrad auf der Straße.", "Zwei Hunde spielen im Schnee.",
             "Eine Frau liest ein Buch im Park.", "Kinder lachen und rennen über die Wiese."]


def make_docx(pages: int = 20) -> bytes:
    d = docx.Document()
    for page in range(pages):
        d.add_heading(f"Kapitel {page + 1}", level=1)
        for k in range(12):  # about a page: 12 paragraphs of 3 sentences
            p = d.add_paragraph(SENTENCES[k % 4] + " ")
            p.add_run(SENTENCES[(k + 1) % 4]).bold = True
            p.add_run(" " + SENTENCES[(k + 2) % 4])
    out = io.BytesIO()
    d.save(out)
    return out.getvalue()


def make_srt(cues: int = 1_000) -> bytes:
    parts = []
    for i in range(cues):
        start, end = i * 3, i * 3 + 2
        parts.append(f"{i + 1}\n00:{start // 60 % 60:02d}:{start % 60:02d},000 --> "
                     f"00:{end // 60 % 60:02d}:{end % 60:02d},500\n{SENTENCES[i % 4]}\n")
    return "\n".join(parts).encode()


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PROBE_KEY, DOC_KEY = "bench-probe-key", "bench-document-key"


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98] if len(samples) >= 2 else samples[0]


def _probe(url: str, stop: threading.Event, out: list[float]) -> None:
    with httpx.Client(timeout=120) as client:
        while not stop.is_set():
            start = time.perf_counter()
            client.post(f"{url}/translate", json={"q": SENTENCES[0], "source": "de",
                                                  "target": "en"},
                        headers={"X-API-Key": PROBE_KEY}).raise_for_status()
            out.append(time.perf_counter() - start)


def serve_benchmark(model: str, threads: int, files: dict[str, bytes]) -> dict[str, float]:
    port = _port()
    url = f"http://127.0.0.1:{port}"
    # Two API keys, so the probe and the document are two clients to the fair scheduler (as two
    # users are; from one address without keys they would share one client's share).
    env = {**os.environ, "NMT_NUM_THREADS": str(threads), "NMT_API_KEYS": f"{PROBE_KEY},{DOC_KEY}",
           "NMT_FILES_DIR": tempfile.mkdtemp(prefix="bench-files-")}
    proc = subprocess.Popen([sys.executable, "-m", "nmt", "serve", "--model", model,
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    results: dict[str, float] = {}
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        idle: list[float] = []
        stop = threading.Event()
        timer = threading.Timer(10.0, stop.set)
        timer.start()
        _probe(url, stop, idle)
        results["idle /translate p50 s"] = statistics.median(idle)
        results["idle /translate p99 s"] = _p99(idle)
        for name, data in files.items():
            busy: list[float] = []
            stop = threading.Event()
            probe = threading.Thread(target=_probe, args=(url, stop, busy))
            probe.start()
            start = time.perf_counter()
            answer = httpx.post(f"{url}/translate_file", data={"source": "de", "target": "en"},
                                files={"file": (name, data)}, timeout=3_600,
                                headers={"X-API-Key": DOC_KEY})
            answer.raise_for_status()
            httpx.get(answer.json()["translatedFileUrl"],
                      headers={"X-API-Key": DOC_KEY}).raise_for_status()
            results[f"/translate_file {name} s"] = time.perf_counter() - start
            stop.set()
            probe.join()
            results[f"/translate p50 during {name} s"] = statistics.median(busy)
            results[f"/translate p99 during {name} s"] = _p99(busy)
            results[f"/translate requests during {name}"] = len(busy)
    finally:
        proc.terminate()
        proc.wait(30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/multi30k-de-en")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    files = {"report.docx": make_docx(), "talk.srt": make_srt()}
    translator = Translator.from_checkpoint(args.model, num_threads=args.threads)
    translate = translator_function(translator)
    for name, data in files.items():
        start = time.perf_counter()
        translate_document(data, Path(name).suffix[1:], translate, target_lang="en")
        print(f"CLI path {name}: {time.perf_counter() - start:.1f} s")
    for key, value in serve_benchmark(args.model, args.threads, files).items():
        print(f"{key}: {value:.3f}")


if __name__ == "__main__":
    main()
