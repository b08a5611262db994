"""Benchmarks: installs each peer into its own virtual environment under benchmarks/work/.

The peers are never dependencies of nmt. Their install traps (shared/peers/*.md), each handled:
- OpenNMT-py 3.5.1 declares torch<2.3: torch 2.13 first, then OpenNMT-py with --no-deps and its
  real run-time needs by hand (spacy and fasttext are stubbed by onmt_entry.py instead);
- JoeyNMT 2.3.0 imports importlib_metadata without declaring it, and calls a SentencePiece
  function that 0.2.3 removed: both pinned here (its ReduceLROnPlateau trap: joey_entry.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.workspace import WORK

TORCH = "torch==2.13.0"
VERSIONS = {"opennmt-py": "3.5.1", "joeynmt": "2.3.0"}
STEPS = {
    "opennmt-py": [
        [TORCH],
        ["--no-deps", "OpenNMT-py==3.5.1"],
        ["configargparse", "pyyaml", "sacrebleu", "sentencepiece", "six", "pyonmttok<2,>=1.37",
         "rapidfuzz", "pyahocorasick"],
    ],
    "joeynmt": [
        [TORCH],
        ["joeynmt==2.3.0", "sacrebleu", "importlib_metadata", "sentencepiece==0.2.0"],
    ],
}
MODULE = {"opennmt-py": "onmt", "joeynmt": "joeynmt"}


def venv_dir(peer: str) -> Path:
    return WORK / "venvs" / peer


def venv_python(peer: str) -> Path:
    return venv_dir(peer) / "bin" / "python"


def installed(peer: str) -> bool:
    """True when the peer's venv exists and imports its package at the pinned version."""
    py = venv_python(peer)
    if not py.exists():
        return False
    probe = (f"import importlib.metadata as m; "
             f"assert m.version('{'OpenNMT-py' if peer == 'opennmt-py' else peer}') == "
             f"'{VERSIONS[peer]}'")
    return subprocess.run([str(py), "-c", probe], capture_output=True, check=False).returncode == 0


def install(peer: str, *, log=print) -> None:
    if installed(peer):
        return
    log(f"installing {peer} {VERSIONS[peer]} into {venv_dir(peer)}")
    venv_dir(peer).parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv_dir(peer))], check=True)
    for args in STEPS[peer]:
        subprocess.run([str(venv_python(peer)), "-m", "pip", "install", "-q", *args], check=True)
    if not installed(peer):
        raise RuntimeError(f"{peer} did not install cleanly into {venv_dir(peer)}")


def versions(peer: str) -> dict[str, str]:
    """Package versions inside a peer's venv, for RESULTS.md."""
    names = {"opennmt-py": ["OpenNMT-py", "torch", "sentencepiece"],
             "joeynmt": ["joeynmt", "torch", "sentencepiece"]}[peer]
    code = ("import importlib.metadata as m, json; "
            f"print(json.dumps({{n: m.version(n) for n in {names!r}}}))")
    out = subprocess.run([str(venv_python(peer)), "-c", code], capture_output=True, text=True,
                         check=True).stdout
    import json

    return json.loads(out)
