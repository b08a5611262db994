"""Training: the Trainer: token-budget batches, teacher forcing, validation, checkpoints, bundle.

One Trainer runs in each torchrun process. Every rank sees the same batch list (a pure function
of seed and epoch) and takes every world_size-th batch; only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import logging
import math
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from nmt import __version__
from nmt.checkpoint import FORMAT_VERSION
from nmt.config import Config
from nmt.data.batching import Batch, make_batch, token_batches, weighted_epoch
from nmt.data.dataset import EncodedCorpus, TrainingData
from nmt.evaluation.metrics import corpus_scores
from nmt.models.seq2seq import Seq2Seq
from nmt.training.distributed import DistInfo, barrier, broadcast
from nmt.training.export import choose_checkpoints, write_bundle
from nmt.training.logbook import Logbook
from nmt.training.loss import sequence_loss
from nmt.training.rotation import average_state_dicts, save_step
from nmt.training.schedule import LRSchedule
from nmt.translator import MIN_GUARD_SOURCE, Translator

log = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss with nan_policy=stop, ...)."""


@dataclass
class Position:
    """Where the run is; saved in every checkpoint so `--resume` continues exactly."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # index of the next batch of `epoch` to train on
    since_best: int = 0  # validations without improvement (early stopping)
    best_score: float | None = None
    best_step: int = 0
    skipped_batches: int = 0
    train_seconds: float = 0.0
    validated_step: int = -1  # last step checkpointed by a validation


class Trainer:
    def __init__(
        self,
        cfg: Config,
        run_dir: Path,
        data: TrainingData,
        model: Seq2Seq,
        *,
        device: torch.device,
        dist_info: DistInfo,
    ):
        self.cfg = cfg
        self.run_dir = run_dir
        self.data = data
        self.model = model
        self.device = device
        self.dist = dist_info
        t = cfg.train
        optim_cls = torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam
        self.optimizer = optim_cls(
            model.parameters(), lr=t.lr, betas=t.adam_betas, weight_decay=t.weight_decay
        )
        self.schedule = LRSchedule(self.optimizer, t)
        self.pos = Position()
        self.ddp = (
            DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None
            )
            if dist_info.enabled
            else None
        )
        precision = t.precision
        if precision == "auto":
            precision = (
                "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
            )
        if precision != "fp32" and device.type != "cuda":
            raise TrainingError(f"train.precision={precision} needs a CUDA device")
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
        self.precision = precision
        self.lengths = data.train.lengths()
        self.logbook = Logbook(run_dir) if dist_info.is_main else None
        self.ckpt_dir = run_dir / "checkpoints"
        self.sampling_generator = torch.Generator(device=device).manual_seed(t.seed)
        # Output/source length statistics, recorded in bundles for the short-output guard.
        reference = data.valid_sets[0] if data.valid_sets else None
        self.length_ratio = (
            reference.corpus.length_ratio(
                skip_first=1 if reference.tag else 0, min_source=MIN_GUARD_SOURCE
            )
            if reference is not None
            else data.train.length_ratio(
                skip_first=1 if cfg.data.tags() else 0, min_source=MIN_GUARD_SOURCE
            )
        )

    # ----------------------------------------------------------------- state
    def checkpoint_state(self) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state(), "sampling": self.sampling_generator.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "format_version": FORMAT_VERSION,
            "kind": "checkpoint",
            "config": self.cfg.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "position": asdict(self.pos),
            "rng": rng,
            "src_spm": self.data.src_tokenizer.model_proto,
            "tgt_spm": self.data.tgt_tokenizer.model_proto,
            "metadata": self.metadata(),
        }

    def restore(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.schedule.load_state_dict(ckpt["schedule"])
        self.pos = Position(**ckpt["position"])
        if self.dist.enabled:
            # Per-rank RNG streams are not saved; re-derive them so ranks still differ.
            torch.manual_seed(self.cfg.train.seed + 1000 * self.dist.rank + self.pos.step)
        else:
            torch.set_rng_state(ckpt["rng"]["torch"])
            self.sampling_generator.set_state(ckpt["rng"]["sampling"])
            if self.device.type == "cuda" and "cuda" in ckpt["rng"]:
                torch.cuda.set_rng_state(ckpt["rng"]["cuda"], self.device)
        self.schedule.step(self.pos.step)
        log.info(
            "resumed at step %d (epoch %d, batch %d)",
            self.pos.step,
            self.pos.epoch + 1,
            self.pos.batch_in_epoch,
        )

    def metadata(self) -> dict[str, Any]:
        return {
            "nmt_version": __version__,
            "torch_version": str(torch.__version__),
            "src_lang": self.cfg.data.src_lang,
            "tgt_lang": self.cfg.data.tgt_lang,
            "src_vocab_size": self.data.src_tokenizer.vocab_size,
            "tgt_vocab_size": self.data.tgt_tokenizer.vocab_size,
            "data_fingerprints": self.data.fingerprints,
            "length_ratio": self.length_ratio,
            "train_pairs": len(self.data.train),
            "filtered": dict(self.data.train.stats.counts),
            **(
                {
                    "corpora": {
                        p.name: {
                            "pairs": p.end - p.start,
                            "weight": p.weight,
                            "filtered": dict(p.stats.counts),
                        }
                        for p in self.data.parts
                    }
                }
                if self.cfg.data.corpora
                else {}
            ),
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "steps": self.pos.step,
            "epochs": self.pos.epoch,
            "train_seconds": round(self.pos.train_seconds, 1),
            "device": self.device_name(),
            "world_size": self.dist.world_size,
            "precision": self.precision,
            "best_valid": {
                "step": self.pos.best_step,
                "score": self.pos.best_score,
                "metric": self.cfg.train.valid_metric,
            },
        }

    def device_name(self) -> str:
        if self.device.type == "cuda":
            return torch.cuda.get_device_name(self.device)
        return (
            f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
        )

    # ----------------------------------------------------------------- steps
    def train_step(self, batch: Batch) -> tuple[float, float, int, float] | None:
        """One optimizer step.

        Returns (loss sum, nll sum, target tokens, grad norm), or None if the batch was skipped.
        """
        t = self.cfg.train
        net = self.ddp or self.model
        self.optimizer.zero_grad(set_to_none=True)
        autocast = (
            torch.autocast(device_type="cuda", dtype=self.autocast_dtype)
            if self.autocast_dtype is not None
            else contextlib.nullcontext()
        )
        with autocast:
            # Every forward pass goes through `net`: called on the bare module, DDP would never
            # all-reduce the gradients and the ranks' weights would drift apart.
            logits = net(
                batch, sample_prob=t.scheduled_sampling, generator=self.sampling_generator
            )
            loss, nll = sequence_loss(logits, batch.tgt_out, label_smoothing=t.label_smoothing)
        n_tokens = batch.num_tgt_tokens
        if not torch.isfinite(loss):
            if t.nan_policy == "stop":
                raise TrainingError(
                    f"non-finite loss ({loss.item()}) at step {self.pos.step + 1}; "
                    "lower train.lr, check the data, or set train.nan_policy=skip"
                )
            log.warning("non-finite loss at step %d: batch skipped", self.pos.step + 1)
            self.pos.skipped_batches += 1
            return None
        scaled = loss / max(1, n_tokens)
        if self.scaler is not None:
            self.scaler.scale(scaled).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            scaled.backward()
        max_norm = t.clip_norm if t.clip_norm > 0 else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm))
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        return loss.item(), nll.item(), n_tokens, grad_norm

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        t = self.cfg.train
        weights = self.data.weights()
        batches = token_batches(
            self.lengths,
            max_tokens=t.max_tokens,
            max_sentences=t.max_sentences,
            seed=t.seed,
            epoch=epoch,
            indices=None if weights is None else weighted_epoch(weights, seed=t.seed, epoch=epoch),
        )
        if self.dist.enabled:
            # Equal counts per rank, or DDP's all-reduce would wait forever for a missing batch.
            usable = len(batches) // self.dist.world_size * self.dist.world_size
            batches = batches[self.dist.rank : usable : self.dist.world_size]
        return batches

    def to_batch(self, indices: list[int]) -> Batch:
        train = self.data.train
        return make_batch(
            [train.src_ids[i] for i in indices], [train.tgt_ids[i] for i in indices]
        ).to(self.device)

    # ----------------------------------------------------------------- validation
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Scores on every validation set.

        The set that picks checkpoints gives `valid_loss`, `valid_ppl` (and `bleu`, `chrf`);
        with several sets each also appears as `<name>/valid_loss`, `<name>/bleu`, ...
        """
        sets = self.data.valid_sets
        assert sets
        result: dict[str, float] = {}
        for n, valid_set in enumerate(sets):
            scores = self.validate_set(valid_set.corpus, valid_set.tag)
            if n == 0:
                result.update(scores)
            if len(sets) > 1:
                result.update({f"{valid_set.name}/{k}": v for k, v in scores.items()})
        return result

    @torch.no_grad()
    def validate_set(self, valid: EncodedCorpus, tag: str | None) -> dict[str, float]:
        self.model.eval()
        try:
            loss_sum = nll_sum = 0.0
            n_tokens = 0
            order = token_batches(
                valid.lengths(),
                max_tokens=self.cfg.train.max_tokens,
                max_sentences=512,
                seed=None,
            )
            for indices in order:
                batch = make_batch(
                    [valid.src_ids[i] for i in indices], [valid.tgt_ids[i] for i in indices]
                ).to(self.device)
                loss, nll = sequence_loss(
                    self.model(batch), batch.tgt_out, label_smoothing=self.cfg.train.label_smoothing
                )
                loss_sum += float(loss)
                nll_sum += float(nll)
                n_tokens += batch.num_tgt_tokens
            result = {
                "valid_loss": loss_sum / n_tokens,
                "valid_ppl": math.exp(min(50.0, nll_sum / n_tokens)),
            }
            if self.cfg.train.valid_metric == "bleu":
                result.update(self.valid_bleu(valid, tag))
            return result
        finally:
            self.model.train()

    def valid_bleu(self, valid: EncodedCorpus, tag: str | None) -> dict[str, float]:
        translator = Translator(
            self.model, self.data.src_tokenizer, self.data.tgt_tokenizer, self.cfg
        )
        hyps = [
            tr.text
            for tr in translator.translate(
                valid.src_text, beam_size=self.cfg.train.valid_beam, domain=tag
            )
        ]
        scores = corpus_scores(hyps, [valid.tgt_text], metrics=("bleu", "chrf"))
        return {"bleu": scores["bleu"]["score"], "chrf": scores["chrf"]["score"]}

    def run_validation(self) -> bool:
        """Validates (rank 0), checkpoints, and returns True when training should stop early."""
        t = self.cfg.train
        result: dict[str, float] = {}
        stop = False
        self.pos.validated_step = self.pos.step
        if self.dist.is_main:
            if self.data.valid is not None:
                result = self.validate()
                metric = result["bleu"] if t.valid_metric == "bleu" else result["valid_loss"]
                is_best = self.schedule.observe(metric, higher_is_better=t.valid_metric == "bleu")
                if is_best:
                    self.pos.best_score, self.pos.best_step, self.pos.since_best = (
                        metric,
                        self.pos.step,
                        0,
                    )
                else:
                    self.pos.since_best += 1
                stop = t.patience > 0 and self.pos.since_best >= t.patience
                if self.logbook is not None:  # rank 0 always has one
                    self.logbook.log("valid", self.pos.step, {"epoch": self.pos.epoch, **result})
                log.info(
                    "validation at step %d: %s%s",
                    self.pos.step,
                    " ".join(f"{k}={v:.4g}" for k, v in result.items()),
                    " (best)" if is_best else "",
                )
            else:
                is_best = True
                self.pos.best_step = self.pos.step
            save_step(
                self.checkpoint_state(),
                self.ckpt_dir,
                self.pos.step,
                keep_last=t.keep_last,
                is_best=is_best,
            )
        shared = broadcast(
            {"stop": stop, "schedule": self.schedule.state_dict(), "pos": asdict(self.pos)},
            self.dist,
        )
        if not self.dist.is_main:
            self.schedule.load_state_dict(shared["schedule"])
            self.pos = Position(**shared["pos"])
        self.schedule.step(self.pos.step)
        return shared["stop"]

    # ----------------------------------------------------------------- loop
    def train(self) -> Path | None:
        """Runs to the end (epochs, max_steps or early stop).

        Returns the bundle directory (rank 0).
        """
        try:
            return self._train_loop()
        finally:
            if self.logbook is not None:
                self.logbook.close()

    def _train_loop(self) -> Path | None:
        t = self.cfg.train
        self.model.train()
        stop = False
        window = {"loss": 0.0, "nll": 0.0, "tokens": 0, "start": time.perf_counter(), "steps": 0}
        while not stop and self.pos.epoch < t.epochs:
            batches = self.epoch_batches(self.pos.epoch)
            bar = tqdm(
                total=len(batches),
                initial=self.pos.batch_in_epoch,
                disable=not self.dist.is_main,
                desc=f"epoch {self.pos.epoch + 1}/{t.epochs}",
                unit="batch",
                dynamic_ncols=True,
                mininterval=1.0,
            )
            epoch_start = time.perf_counter()
            while self.pos.batch_in_epoch < len(batches):
                step_start = time.perf_counter()
                outcome = self.train_step(self.to_batch(batches[self.pos.batch_in_epoch]))
                self.pos.batch_in_epoch += 1
                bar.update(1)
                if outcome is None:
                    continue
                self.pos.step += 1
                self.pos.train_seconds += time.perf_counter() - step_start
                loss, nll, n_tokens, grad_norm = outcome
                window["loss"] += loss
                window["nll"] += nll
                window["tokens"] += n_tokens
                window["steps"] += 1
                lr = self.schedule.step(self.pos.step)
                if self.pos.step % t.log_every == 0 or self.pos.step == 1:
                    self.log_window(window, lr, grad_norm, bar)
                if t.valid_every and self.pos.step % t.valid_every == 0:
                    stop = self.run_validation()
                if stop or (t.max_steps and self.pos.step >= t.max_steps):
                    stop = True
                    break
            bar.close()
            if self.pos.batch_in_epoch >= len(batches):
                log.info(
                    "epoch %d done in %.1f s", self.pos.epoch + 1, time.perf_counter() - epoch_start
                )
                self.pos.epoch += 1
                self.pos.batch_in_epoch = 0
                if not t.valid_every and not stop:
                    stop = self.run_validation()
        if self.pos.validated_step != self.pos.step:
            self.run_validation()
        barrier(self.dist)
        return self.finish() if self.dist.is_main else None

    def log_window(self, window: dict[str, Any], lr: float, grad_norm: float, bar: tqdm) -> None:
        elapsed = max(1e-9, time.perf_counter() - window["start"])
        loss = window["loss"] / max(1, window["tokens"])
        ppl = math.exp(min(50.0, window["nll"] / max(1, window["tokens"])))
        tok_s = window["tokens"] * self.dist.world_size / elapsed
        bar.set_postfix(loss=f"{loss:.3f}", ppl=f"{ppl:.1f}", tok_s=f"{tok_s:.0f}", lr=f"{lr:.2e}")
        if self.logbook is not None:
            self.logbook.log(
                "train",
                self.pos.step,
                {
                    "epoch": self.pos.epoch,
                    "loss": loss,
                    "ppl": ppl,
                    "lr": lr,
                    "tokens_per_s": tok_s,
                    "grad_norm": grad_norm,
                },
            )
        window.update(loss=0.0, nll=0.0, tokens=0, steps=0, start=time.perf_counter())

    def finish(self) -> Path:
        """Exports the bundle: the best checkpoint, or the average of the last N checkpoints."""
        t = self.cfg.train
        chosen = choose_checkpoints(self.ckpt_dir, t.average_last)
        weights = average_state_dicts(chosen)
        source = (
            chosen[0].name
            if len(chosen) == 1
            else f"average of {', '.join(p.name for p in chosen)}"
        )
        self.model.load_state_dict(weights)
        metadata = self.metadata()
        metadata["weights_from"] = source
        if self.data.valid is not None:
            metadata["valid_scores"] = self.validate()
            log.info("bundle (%s) validation: %s", source, metadata["valid_scores"])
        bundle = write_bundle(
            self.run_dir / "bundle",
            config=self.cfg,
            weights=weights,
            src_tokenizer=self.data.src_tokenizer,
            tgt_tokenizer=self.data.tgt_tokenizer,
            metadata=metadata,
            half=t.bundle_dtype == "float16",
        )
        log.info("bundle written to %s", bundle)
        return bundle
