"""LoRA training reference: HF causal-LM loss, gradients of the LoRA parameters only,
torch.optim.AdamW, optional global-norm clipping, constant learning rate.

Loss (transformers loss_utils.ForCausalLMLoss + fixed_cross_entropy without
num_items_in_batch): logits[:, t] predicts labels[:, t+1]; labels == -100 are ignored;
the loss is the mean over all unmasked label positions of the whole batch.
"""

import json

import torch
import torch.nn.functional as F

from errors import InputError
from lora import lora_parameters

IGNORE_INDEX = -100


def pad_rows(rows, pad_value, side="right"):
    """Ragged list of int lists -> (B, T) long tensor and (B, T) mask (1 = real)."""
    if side not in ("left", "right"):
        raise InputError(f"padding side must be left or right, got {side!r}")
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_value, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for b, row in enumerate(rows):
        if side == "right":
            ids[b, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[b, : len(row)] = 1
        else:
            ids[b, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[b, width - len(row) :] = 1
    return ids, mask


def _int_rows(value, name, where):
    if (not isinstance(value, list) or not value
            or not all(isinstance(r, list) and r for r in value)
            or not all(isinstance(x, int) and not isinstance(x, bool) for r in value for x in r)):
        raise InputError(f"{where}: '{name}' must be a non-empty list of non-empty int lists")
    return value


def load_batch(path, vocab_size):
    """{"input_ids": [[..]], "labels": [[..]]} (rows may differ in length; labels aligned
    with input_ids, -100 = ignore; labels default to input_ids) ->
    (ids (B, T), mask (B, T), labels (B, T)), right-padded, labels -100 on padding."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: invalid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected an object with input_ids and labels")
    rows = _int_rows(raw.get("input_ids"), "input_ids", path)
    labels = _int_rows(raw.get("labels", rows), "labels", path)
    if len(labels) != len(rows) or any(len(a) != len(b) for a, b in zip(rows, labels)):
        raise InputError(f"{path}: labels must have the same shape as input_ids")
    for r in rows:
        for x in r:
            if not 0 <= x < vocab_size:
                raise InputError(f"{path}: token id {x} outside vocab [0, {vocab_size})")
    for r in labels:
        for x in r:
            if x != IGNORE_INDEX and not 0 <= x < vocab_size:
                raise InputError(f"{path}: label {x} is neither -100 nor a token id")
    ids, mask = pad_rows(rows, 0)
    lab, _ = pad_rows(labels, IGNORE_INDEX)
    if not (lab[:, 1:] != IGNORE_INDEX).any():
        raise InputError(f"{path}: no label position after the first token; the loss is empty")
    return ids, mask, lab


def causal_lm_loss(logits, labels):
    """logits (B, T, V), labels (B, T) -> mean cross entropy of logits[:, t] vs labels[:, t+1]."""
    dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32  # HF: logits.float()
    shift_logits = logits[:, :-1, :].to(dtype).reshape(-1, logits.shape[-1])  # (B*(T-1), V)
    shift_labels = labels[:, 1:].reshape(-1)  # (B*(T-1))
    return F.cross_entropy(shift_logits, shift_labels, ignore_index=IGNORE_INDEX, reduction="mean")


def train_steps(model, ids, mask, labels, steps, lr, weight_decay=0.0, clip=None,
                betas=(0.9, 0.999), eps=1e-8):
    """Runs `steps` AdamW steps on the model's LoRA parameters, all on the same batch.

    Returns (losses: list of float, the loss before each step; grads0: dict PEFT key ->
    gradient at step 0, before clipping)."""
    named = lora_parameters(model)
    if not named:
        raise InputError("model has no LoRA parameters to train")
    params = [p for _, p in named]
    opt = torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    losses, grads0 = [], {}
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = causal_lm_loss(model(ids, attention_mask=mask), labels)
        loss.backward()
        if step == 0:
            grads0 = {k: p.grad.detach().clone() for k, p in named}
        if clip is not None and clip > 0:
            torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        losses.append(loss.item())
    return losses, grads0
