"""Training: the translation task: token-budget batches, teacher forcing, validation, bundle.

It plugs into the one training loop (nmt.training.loop), which owns the optimiser, schedule,
precision, DDP, checkpoints, logging and resume. Every rank sees the same batch list (a pure
function of seed and epoch) and takes every world_size-th batch; only rank 0 writes files.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch

from nmt import __version__
from nmt.config import Config
from nmt.data.batching import Batch, make_batch, token_batches, weighted_epoch
from nmt.data.dataset import EncodedCorpus, TrainingData
from nmt.evaluation.metrics import corpus_scores
from nmt.models.seq2seq import Seq2Seq
from nmt.training.distributed import DistInfo
from nmt.training.export import choose_checkpoints, write_bundle
from nmt.training.loop import (
    EpochBatches,
    Position,
    StepLoss,
    StepStats,
    TrainingError,
    TrainingLoop,
    device_name,
)
from nmt.training.loss import sequence_loss
from nmt.training.rotation import average_state_dicts
from nmt.translator import MIN_GUARD_SOURCE, Translator

log = logging.getLogger(__name__)
__all__ = ["Position", "Trainer", "TrainingError"]


class Trainer(TrainingLoop[Seq2Seq]):
    """Translation on the shared loop; `train()` is TrainingLoop.train."""

    KIND = "checkpoint"

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
        super().__init__(cfg.train, run_dir, model, device=device, dist_info=dist_info,
                         precision=cfg.train.precision)
        self.cfg = cfg
        self.data = data
        self.lengths = data.train.lengths()
        self.sampling_generator = torch.Generator(device=device).manual_seed(cfg.train.seed)
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
    def config_dict(self) -> dict[str, Any]:
        return self.cfg.to_dict()

    def extra_state(self) -> dict[str, Any]:
        return {
            "src_spm": self.data.src_tokenizer.model_proto,
            "tgt_spm": self.data.tgt_tokenizer.model_proto,
        }

    def extra_rng(self) -> dict[str, torch.Tensor]:
        return {"sampling": self.sampling_generator.get_state()}

    def restore_extra_rng(self, rng: dict[str, torch.Tensor]) -> None:
        self.sampling_generator.set_state(rng["sampling"])

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
            "device": device_name(self.device),
            "world_size": self.dist.world_size,
            "precision": self.precision,
            "best_valid": {
                "step": self.pos.best_step,
                "score": self.pos.best_score,
                "metric": self.cfg.train.valid_metric,
            },
        }

    # ----------------------------------------------------------------- steps
    def train_step(self, batch: Batch) -> StepLoss | None:
        """Teacher-forced forward pass and loss; None skips a non-finite batch (nan_policy)."""
        t = self.cfg.train
        logits = self.net(
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
        return StepLoss(loss / max(1, n_tokens), StepStats(loss.item(), nll.item(), n_tokens))

    def plan_epoch(self, epoch: int, start: int) -> EpochBatches:
        batches = self.epoch_batches(epoch)
        return EpochBatches(len(batches), (self.to_batch(b) for b in batches[start:]))

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

    @property
    def has_validation(self) -> bool:
        return self.data.valid is not None

    def valid_score(self, result: dict[str, float]) -> tuple[float, bool]:
        if self.cfg.train.valid_metric == "bleu":
            return result["bleu"], True
        return result["valid_loss"], False

    # ----------------------------------------------------------------- export
    def export(self) -> Path:
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
