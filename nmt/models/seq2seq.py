"""Models: the encoder-decoder, its bridge (the context vector), and `build_model`."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nmt.config import ModelConfig
from nmt.data.batching import Batch
from nmt.models.decoder import DecoderState, RNNDecoder
from nmt.models.encoder import EncoderOutput, RNNEncoder


class Bridge(nn.Module):
    """Maps the encoder's final state (the context vector) to the decoder's initial state."""

    def __init__(self, *, enc_dim: int, dec_hidden: int, dec_layers: int, lstm: bool):
        super().__init__()
        self.hidden = nn.Linear(enc_dim, dec_hidden * dec_layers)
        self.cell = nn.Linear(enc_dim, dec_hidden * dec_layers) if lstm else None
        self.dec_layers = dec_layers
        self.dec_hidden = dec_hidden

    def _layers(self, x: Tensor) -> Tensor:
        """(B, L * H) -> (L, B, H)."""
        return x.view(x.size(0), self.dec_layers, self.dec_hidden).transpose(0, 1).contiguous()

    def forward(self, enc: EncoderOutput, input_feeding: bool) -> DecoderState:
        hidden = self._layers(torch.tanh(self.hidden(enc.final)))
        cell = None
        if self.cell is not None:
            source = enc.final_cell if enc.final_cell is not None else enc.final
            cell = self._layers(self.cell(source))
        feed = hidden.new_zeros(hidden.size(1), self.dec_hidden) if input_feeding else None
        return DecoderState(hidden=hidden, cell=cell, input_feed=feed)


class Seq2Seq(nn.Module):
    """A pure module: no I/O, no device, no randomness beyond dropout."""

    def __init__(self, encoder: RNNEncoder, decoder: RNNDecoder, bridge: Bridge):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.bridge = bridge

    @property
    def has_attention(self) -> bool:
        return self.decoder.attention is not None

    def encode(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        enc = self.encoder(src, src_lengths)
        if self.decoder.attention is None:
            return enc
        return EncoderOutput(
            outputs=enc.outputs,
            mask=enc.mask,
            final=enc.final,
            final_cell=enc.final_cell,
            proj_keys=self.decoder.attention.project_keys(enc.outputs),
        )

    def init_state(self, enc: EncoderOutput) -> DecoderState:
        return self.bridge(enc, self.decoder.input_feeding)

    def decode_step(self, prev_tokens: Tensor, state: DecoderState, enc: EncoderOutput
                    ) -> tuple[Tensor, DecoderState, Tensor | None]:
        """(R,) previous ids -> log-probs (R, V), next state, attention (R, S) or None.

        R = B * K rows, the K beams of each of enc's B sentences consecutive (K = 1: greedy);
        `state` has R rows, `enc` one row per sentence (see `RNNDecoder.step`).
        """
        attentional, state, attn = self.decoder.step(prev_tokens, state, enc)
        logits = self.decoder.logits(attentional).float()  # (R, V), a fresh tensor
        if torch.is_grad_enabled() or logits.device.type != "cpu":  # out= has no autograd
            return logits.log_softmax(dim=-1), state, attn
        # In place on the CPU, the same values: not allocating a second (R, V) tensor took 15-30%
        # off the log-softmax of a beam-5 step (320 rows x 8,000). (CUDA's caching allocator
        # makes that allocation cheap, and autocast sets no rule for out= variants.)
        return torch.log_softmax(logits, dim=-1, out=logits), state, attn

    def forward(
        self,
        batch: Batch,
        *,
        sample_prob: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Teacher forcing: logits (B, T, V) for `batch.tgt_in`.

        With `sample_prob > 0` this is scheduled sampling (Bengio et al., 2015): each input token
        after BOS is replaced, with probability `sample_prob`, by the model's own previous
        prediction, step by step. The draws come from the caller's `generator`, so the training
        loop owns that randomness (and saves it for `--resume`). It is an argument of `forward`
        rather than a separate function so that a `DistributedDataParallel` wrapper sees the
        forward pass and synchronises its gradients.
        """
        enc = self.encode(batch.src, batch.src_lengths)
        state = self.init_state(enc)
        if sample_prob <= 0.0:
            return self.decoder(batch.tgt_in, state, enc)
        return self._scheduled_sampling(batch.tgt_in, state, enc, sample_prob, generator)

    def _scheduled_sampling(
        self,
        tgt_in: Tensor,
        state: DecoderState,
        enc: EncoderOutput,
        sample_prob: float,
        generator: torch.Generator | None,
    ) -> Tensor:
        """(B, T) gold inputs -> (B, T, V) logits, feeding back argmax predictions at random."""
        steps = []
        prev = tgt_in[:, 0]
        for t in range(tgt_in.size(1)):
            attentional, state, _ = self.decoder.step(prev, state, enc)
            logits = self.decoder.logits(attentional)  # (B, V)
            steps.append(logits)
            if t + 1 < tgt_in.size(1):
                gold = tgt_in[:, t + 1]
                draw = torch.rand(gold.shape, generator=generator, device=gold.device)
                predicted = logits.detach().argmax(dim=-1)
                prev = torch.where(draw < sample_prob, predicted, gold)
        return torch.stack(steps, dim=1)


def build_model(cfg: ModelConfig, *, src_vocab_size: int, tgt_vocab_size: int) -> Seq2Seq:
    if cfg.share_embeddings and src_vocab_size != tgt_vocab_size:
        raise ValueError("model.share_embeddings needs one joint vocabulary")
    src_emb = nn.Embedding(src_vocab_size, cfg.emb_dim, padding_idx=0)
    tgt_emb = src_emb if cfg.share_embeddings else nn.Embedding(tgt_vocab_size, cfg.emb_dim,
                                                                 padding_idx=0)
    encoder = RNNEncoder(
        vocab_size=src_vocab_size, emb_dim=cfg.emb_dim, hidden_dim=cfg.enc_hidden, cell=cfg.cell,
        num_layers=cfg.enc_layers, bidirectional=cfg.bidirectional, dropout=cfg.dropout,
        emb_dropout=cfg.emb_dropout, embedding=src_emb,
    )
    decoder = RNNDecoder(
        vocab_size=tgt_vocab_size, emb_dim=cfg.emb_dim, hidden_dim=cfg.dec_hidden,
        enc_dim=encoder.output_dim, cell=cfg.cell, num_layers=cfg.dec_layers,
        attention=cfg.attention, attn_dim=cfg.attn_dim, input_feeding=cfg.input_feeding,
        dropout=cfg.dropout, emb_dropout=cfg.emb_dropout, tie_output=cfg.tie_output,
        embedding=tgt_emb,
    )
    bridge = Bridge(enc_dim=encoder.output_dim, dec_hidden=cfg.dec_hidden,
                    dec_layers=cfg.dec_layers, lstm=cfg.cell == "lstm")
    model = Seq2Seq(encoder, decoder, bridge)
    _init_weights(model)
    return model


def _init_weights(model: Seq2Seq) -> None:
    """Small uniform weights, orthogonal recurrent matrices, zero biases (common RNN practice)."""
    for name, param in model.named_parameters():
        if "weight_hh" in name:
            for chunk in param.data.chunk(param.size(0) // param.size(1), dim=0):
                nn.init.orthogonal_(chunk)
        elif "embedding" in name:
            nn.init.normal_(param.data, std=param.size(1) ** -0.5)
            param.data[0].zero_()
        elif param.dim() > 1:
            nn.init.xavier_uniform_(param.data)
        else:
            nn.init.zeros_(param.data)
    for module in model.modules():
        if isinstance(module, nn.LSTM):
            # Forget gates start mostly open (bias 1), so early gradients are not halved at
            # every step back (Jozefowicz et al., 2015). Gate order in torch: i, f, g, o.
            for name, param in module.named_parameters():
                if name.startswith("bias_ih"):
                    hidden = param.size(0) // 4
                    param.data[hidden : 2 * hidden].fill_(1.0)
