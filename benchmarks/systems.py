"""Benchmarks: the three systems: how each is trained and how its translate worker starts.

The architecture is the same in all three: embeddings 256, a bidirectional GRU encoder of 256
per direction, a GRU decoder of 512, Bahdanau (additive) attention, the shared 8,000-piece
SentencePiece vocabulary, dropout 0.3, Adam 1e-3, clip 1.0, label smoothing 0.1. What differs is
stated in RESULTS.md: nmt's default config has no input feeding and ties the output layer to the
target embedding (7.2M parameters); both peers use input feeding and untied outputs (about 12M).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from benchmarks.peers import venv_python
from benchmarks.workspace import ROOT, Workspace

SYSTEMS = ("nmt", "opennmt-py", "joeynmt")
PEERS = ("opennmt-py", "joeynmt")
ENTRY = ROOT / "benchmarks" / "entry"
# A fixed tokens-per-update budget for all three (each counts its own way; RESULTS.md gives the
# real target tokens per update each one ends up with).
BATCH_TOKENS = 4096
# Updates between checkpoints: a run stopped at its time budget loses at most this many.
CKPT_EVERY = 20


@dataclass(frozen=True)
class Command:
    argv: list[str]
    env: dict[str, str]


def thread_env(threads: int) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
            "BENCH_THREADS": str(threads), "PYTHONPATH": str(ROOT)}


def sizes(ws: Workspace) -> dict[str, int]:
    """Model sizes: the real ones, or tiny ones for --quick."""
    if ws.quick:
        return {"emb": 32, "enc": 32, "dec": 64, "attn": 32}
    return {"emb": 256, "enc": 256, "dec": 512, "attn": 256}


# ---------------------------------------------------------------- training commands
def train_command(system: str, ws: Workspace, *, threads: int, input_feeding: bool = False,
                  max_steps: int = 0, out: Path | None = None, log_every: int = 10,
                  resume_from: str | None = None) -> Command:
    """The command that trains `system` into `out` (default ws.models(system)): from scratch,
    or (peers only) on from the checkpoint `resume_from`, weights and optimizer state."""
    out = out or ws.models(system + ("-if" if input_feeding else ""))
    out.mkdir(parents=True, exist_ok=True)
    env = thread_env(threads)
    if system == "nmt":
        if resume_from:  # nmt resumes a run directory exactly where it stopped
            return Command([sys.executable, "-m", "nmt", "train", "--resume", str(out)], env)
        return Command(_nmt_train(ws, out, threads, input_feeding, max_steps, log_every), env)
    if system == "opennmt-py":
        resume = ["-train_from", resume_from] if resume_from else []
        return Command([str(venv_python(system)), str(ENTRY / "onmt_entry.py"), "train",
                        "-config", str(_onmt_config(ws, out, max_steps, log_every)), *resume],
                       env)
    if system == "joeynmt":
        return Command([str(venv_python(system)), str(ENTRY / "joey_entry.py"), "train",
                        str(_joey_config(ws, out, max_steps, log_every, resume_from))], env)
    raise ValueError(system)


def _nmt_train(ws: Workspace, out: Path, threads: int, input_feeding: bool, max_steps: int,
               log_every: int) -> list[str]:
    s = sizes(ws)
    sets = {
        "data.train_src": ws.text("train", "de"), "data.train_tgt": ws.text("train", "en"),
        "data.valid_src": ws.text("valid", "de"), "data.valid_tgt": ws.text("valid", "en"),
        "tokenizer.model_dir": ws.spm_dir, "tokenizer.vocab_size": 1000 if ws.quick else 8000,
        "model.emb_dim": s["emb"], "model.enc_hidden": s["enc"], "model.dec_hidden": s["dec"],
        "model.attn_dim": s["attn"], "model.input_feeding": str(input_feeding).lower(),
        "train.max_tokens": BATCH_TOKENS, "train.num_threads": threads,
        # Checkpoints every CKPT_EVERY updates, judged by validation loss (cheap), so a run
        # stopped at its time budget leaves a recent checkpoint; bundle weights stay float32.
        "train.valid_metric": "loss", "train.valid_every": CKPT_EVERY, "train.patience": 0,
        "train.max_steps": max_steps, "train.bundle_dtype": "float32", "train.log_every": log_every,
    }
    argv = [sys.executable, "-m", "nmt", "train", "--config",
            str(ROOT / "configs" / "multi30k-de-en.yaml"), "--run-dir", str(out)]
    for key, value in sets.items():
        argv += ["--set", f"{key}={value}"]
    return argv


def _write_config(out: Path, cfg: dict) -> Path:
    # Beside the model directory: JoeyNMT empties its model directory when it starts.
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def _onmt_config(ws: Workspace, out: Path, max_steps: int, log_every: int) -> Path:
    s = sizes(ws)
    vocab = 1000 if ws.quick else 8000
    cfg = {
        "save_data": str(out / "data"),
        "src_vocab": str(ws.vocab("onmt")), "tgt_vocab": str(ws.vocab("onmt")),
        "share_vocab": True, "src_vocab_size": vocab, "tgt_vocab_size": vocab,
        "src_subword_model": str(ws.spm_model), "tgt_subword_model": str(ws.spm_model),
        "data": {
            "corpus_1": {"path_src": str(ws.text("train", "de")),
                         "path_tgt": str(ws.text("train", "en")), "transforms": ["sentencepiece"]},
            "valid": {"path_src": str(ws.text("valid", "de")),
                      "path_tgt": str(ws.text("valid", "en")), "transforms": ["sentencepiece"]},
        },
        "save_model": str(out / "model"), "save_checkpoint_steps": CKPT_EVERY, "keep_checkpoint": 3,
        "train_steps": max_steps or 1_000_000, "valid_steps": 1_000_000,
        "report_every": log_every,
        "log_file": str(out / "train.log"), "seed": 1234, "num_workers": 0,
        "encoder_type": "brnn", "decoder_type": "rnn", "rnn_type": "GRU", "layers": 1,
        "enc_hid_size": 2 * s["enc"], "dec_hid_size": s["dec"], "word_vec_size": s["emb"],
        "global_attention": "mlp", "input_feed": 1, "bridge": True,
        "dropout": [0.3], "optim": "adam", "learning_rate": 0.001, "max_grad_norm": 1.0,
        "label_smoothing": 0.1, "param_init": 0.0, "param_init_glorot": True,
        "batch_type": "tokens", "batch_size": BATCH_TOKENS, "valid_batch_size": 64,
    }
    return _write_config(out, cfg)


def _joey_config(ws: Workspace, out: Path, max_steps: int, log_every: int,
                 resume_from: str | None = None) -> Path:
    s = sizes(ws)
    side = {"level": "bpe", "lowercase": False, "max_length": 100,
            "voc_file": str(ws.vocab("joey")), "tokenizer_type": "sentencepiece",
            "tokenizer_cfg": {"model_file": str(ws.spm_model)}}
    cfg = {
        "name": "joey-bench", "joeynmt_version": "2.3.0", "model_dir": str(out),
        "use_cuda": False, "num_workers": 0,
        "data": {
            "train": str(ws.data / "train"), "dev": str(ws.data / "valid"),
            # JoeyNMT validates on `dev` to checkpoint: a 100-sentence slice keeps that cheap.
            "sample_dev_subset": 100, "dataset_type": "plain",
            "src": {"lang": "de", **side}, "trg": {"lang": "en", **side},
            "special_symbols": {"unk_token": "<unk>", "unk_id": 0, "pad_token": "<pad>",
                                "pad_id": 1, "bos_token": "<s>", "bos_id": 2,
                                "eos_token": "</s>", "eos_id": 3},
        },
        "testing": {"beam_size": 5, "alpha": 1.0, "batch_size": 64, "batch_type": "sentence",
                    "max_output_length": 100, "eval_metrics": ["bleu"]},
        "training": {
            "random_seed": 1234, "optimizer": "adam", "learning_rate": 0.001,
            "scheduling": "plateau", "patience": 5, "decrease_factor": 0.5,
            "clip_grad_norm": 1.0, "label_smoothing": 0.1, "batch_size": BATCH_TOKENS,
            "batch_type": "token", "epochs": 100, "updates": max_steps or 1_000_000,
            "validation_freq": CKPT_EVERY, "logging_freq": log_every, "eval_metrics": ["bleu"],
            "early_stopping_metric": "ppl", "keep_best_ckpts": 2, "overwrite": True,
            "shuffle": True, "print_valid_sents": [], "model_dir": str(out),
            **({"load_model": resume_from} if resume_from else {}),
        },
        "model": {
            "initializer": "xavier_uniform", "bias_initializer": "zeros",
            "embed_initializer": "xavier_uniform", "init_rnn_orthogonal": False,
            "tied_embeddings": False, "tied_softmax": False,
            "encoder": {"type": "recurrent", "rnn_type": "gru", "hidden_size": s["enc"],
                        "bidirectional": True, "num_layers": 1, "dropout": 0.3,
                        "embeddings": {"embedding_dim": s["emb"], "dropout": 0.3}},
            "decoder": {"type": "recurrent", "rnn_type": "gru", "hidden_size": s["dec"],
                        "num_layers": 1, "dropout": 0.3, "hidden_dropout": 0.3,
                        "input_feeding": True, "init_hidden": "bridge",
                        "attention": "bahdanau",
                        "embeddings": {"embedding_dim": s["emb"], "dropout": 0.3}},
        },
    }
    return _write_config(out, cfg)
