"""Benchmarks: the shared workspace: plain-text Multi30k, one SentencePiece model, vocab files.

Everything lives under benchmarks/work/ (git-ignored). The joint unigram 8000 model is trained
once, with nmt's own tokenizer code, and handed to all three systems; each peer gets a vocabulary
file listing exactly its pieces, so all three predict over the same 8,000 subwords.
"""

from __future__ import annotations

import gzip
import json
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / "work"
DATA = ROOT / "data" / "multi30k"
SPLITS = {"train": "train", "valid": "val", "test": "test_2016_flickr"}
SPECIAL_PIECES = ("<pad>", "<unk>", "<s>", "</s>")


@dataclass(frozen=True)
class Workspace:
    """Paths of one benchmark workspace (the real one, or a --quick one in a temp dir)."""

    root: Path
    quick: bool = False

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def spm_dir(self) -> Path:
        return self.root / "spm"  # nmt's tokenizer cache layout: joint.model + key.json

    @property
    def spm_model(self) -> Path:
        return self.spm_dir / "joint.model"

    def text(self, split: str, lang: str) -> Path:
        return self.data / f"{split}.{lang}"

    def vocab(self, peer: str) -> Path:
        return self.data / f"vocab.{peer}"

    def models(self, system: str) -> Path:
        return self.root / "models" / system


def read_gz(path: Path, limit: int | None = None) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    return lines[:limit] if limit else lines


def prepare(ws: Workspace, *, log=print) -> None:
    """Writes plain-text splits, trains the shared SentencePiece model and the vocab files."""
    ws.data.mkdir(parents=True, exist_ok=True)
    # --quick: small slices, so the whole pipeline runs in seconds.
    limits = {"train": 3000, "valid": 40, "test": 40} if ws.quick else {}
    for split, stem in SPLITS.items():
        for lang in ("de", "en"):
            out = ws.text(split, lang)
            if not out.exists():
                lines = read_gz(DATA / f"{stem}.{lang}.gz", limits.get(split))
                out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    if not ws.spm_model.exists():
        _train_spm(ws, log)
    _write_vocabs(ws)


def _train_spm(ws: Workspace, log) -> None:
    # nmt's own path: the same normalisation, settings and cache key as `nmt train`.
    from nmt.config import TokenizerConfig
    from nmt.data.corpus import read_parallel
    from nmt.data.dataset import build_tokenizers

    log(f"training the shared SentencePiece model in {ws.spm_dir}")
    corpus = read_parallel(str(ws.text("train", "de")), str(ws.text("train", "en")),
                           on_bad_line="error")
    vocab = 1000 if ws.quick else 8000
    build_tokenizers(TokenizerConfig(type="unigram", vocab_size=vocab, joint=True,
                                     character_coverage=1.0), corpus, ws.spm_dir)


def _write_vocabs(ws: Workspace) -> None:
    from nmt.tokenization import Tokenizer

    tok = Tokenizer.from_file(ws.spm_model)
    pieces = [tok.id_to_piece(i) for i in range(tok.vocab_size)]
    ordinary = [p for p in pieces if p not in SPECIAL_PIECES]
    # OpenNMT-py adds its own specials (<unk> <blank> <s> </s>); JoeyNMT's come from its config
    # at ids 0-3, so both end up with the same 8,000 entries as nmt.
    ws.vocab("onmt").write_text("".join(p + "\n" for p in ordinary), encoding="utf-8")
    ws.vocab("joey").write_text("".join(p + "\n" for p in ("<unk>", "<pad>", "<s>", "</s>",
                                                          *ordinary)), encoding="utf-8")


def machine_info() -> dict[str, str]:
    """What RESULTS.md states about the machine the figures come from."""
    import torch

    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        flags = "avx512" if "avx512f" in out else ("avx2" if "avx2" in out else "")
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    import os

    return {
        "cpu": f"{model} ({os.cpu_count()} cores{', ' + flags if flags else ''})",
        "memory": mem,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "gpu": ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        if torch.cuda.is_available() else "none",
    }


def save_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1) + "\n", encoding="utf-8")
