"""Inference paths of the reference: full-sequence logits, batched logits with padding,
prefix + token-by-token logits through the KV cache, greedy generation. All run under
torch.inference_mode."""

import torch

from errors import InputError
from hf_model import KVCache
from train import pad_rows


def check_ids(ids, vocab_size, what="ids"):
    if not ids:
        raise InputError(f"{what}: empty token list")
    for x in ids:
        if not 0 <= x < vocab_size:
            raise InputError(f"{what}: token id {x} outside vocab [0, {vocab_size})")


@torch.inference_mode()
def logits_single(model, ids, return_hidden=False):
    """ids: list of int -> (T, V) float32 logits (and [(T, C)] hidden states if asked)."""
    out = model(torch.tensor([ids], dtype=torch.long), return_hidden=return_hidden)
    if return_hidden:
        logits, hidden = out
        return logits[0], [h[0].float() for h in hidden]
    return out[0]


@torch.inference_mode()
def logits_batch(model, rows, padding="right"):
    """rows: ragged list of id lists -> (B, Tmax, V) float32 where [b, t] is token t of row
    b whatever the padding side used inside, and positions past a row's end are zero."""
    ids, mask = pad_rows(rows, 0, padding)
    logits = model(ids, attention_mask=mask)  # (B, Tmax, V)
    out = torch.zeros_like(logits)
    for b, row in enumerate(rows):
        real = mask[b].nonzero().flatten()
        out[b, : len(row)] = logits[b, real]
    return out


@torch.inference_mode()
def logits_cached(model, ids, split):
    """Logits of ids computed as one forward over ids[:split] into a KV cache, then one
    forward per remaining token. Equal to logits_single up to rounding."""
    if not 1 <= split <= len(ids):
        raise InputError(f"--split {split} must be in [1, {len(ids)}]")
    cache = KVCache(model.config.num_hidden_layers)
    parts = [model(torch.tensor([ids[:split]], dtype=torch.long), cache=cache)[0]]
    for tok in ids[split:]:
        parts.append(model(torch.tensor([[tok]], dtype=torch.long), cache=cache)[0])
    return torch.cat(parts, dim=0)


@torch.inference_mode()
def greedy_generate(model, ids, max_tokens, eos_ids=()):
    """Greedy decoding with the KV cache. Returns the new tokens; an eos token is
    included and ends generation (as transformers' generate does)."""
    cache = KVCache(model.config.num_hidden_layers)
    logits = model(torch.tensor([ids], dtype=torch.long), cache=cache, logits_to_keep=1)[0, -1]
    new = []
    for _ in range(max_tokens):
        tok = int(torch.argmax(logits).item())
        new.append(tok)
        if tok in eos_ids:
            break
        logits = model(torch.tensor([[tok]], dtype=torch.long), cache=cache)[0, -1]
    return new
