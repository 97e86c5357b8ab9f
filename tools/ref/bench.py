"""Throughput of the reference itself (same torch as the product), the peer for the C++
benchmarks. Token ids are drawn from a seeded generator; timings use time.perf_counter
after one untimed warm-up."""

import contextlib
import resource
import time

import torch
import torch.nn.functional as F

from hf_model import KVCache
from lora import LoraConfig, inject
from train import causal_lm_loss


def _random_ids(vocab, n, seed):
    return torch.randint(0, vocab, (1, n), generator=torch.Generator().manual_seed(seed))


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


@contextlib.contextmanager
def matvec_linear():
    """Routes single-row F.linear calls to torch.mv: in torch 1.13 on CPU a one-row
    linear is several times slower than mv on the same weights, which would make the
    reference's decode speed a strawman. Same math; rounding may differ in the last bit."""
    original = F.linear

    def linear(x, weight, bias=None):
        if x.shape[-1] == x.numel():
            y = torch.mv(weight, x.reshape(-1)).reshape(*x.shape[:-1], weight.shape[0])
            return y if bias is None else y + bias
        return original(x, weight, bias)

    F.linear = linear
    try:
        yield
    finally:
        F.linear = original


@torch.inference_mode()
def bench_inference(model, prefill, decode, seed=0, matvec=False):
    """Prefill `prefill` random tokens into a fresh cache, then greedy-decode `decode`.
    As HF generate, only the last position's logits are computed. matvec: see
    matvec_linear."""
    with matvec_linear() if matvec else contextlib.nullcontext():
        return _bench_inference(model, prefill, decode, seed)


def _bench_inference(model, prefill, decode, seed):
    vocab = model.config.vocab_size
    warm = KVCache(model.config.num_hidden_layers)
    model(_random_ids(vocab, prefill, seed + 1), cache=warm, logits_to_keep=1)  # full size: steady state
    model(_random_ids(vocab, 1, seed + 2), cache=warm)

    cache = KVCache(model.config.num_hidden_layers)
    ids = _random_ids(vocab, prefill, seed)
    t0 = time.perf_counter()
    logits = model(ids, cache=cache, logits_to_keep=1)[0, -1]
    t1 = time.perf_counter()
    for _ in range(decode):
        tok = torch.argmax(logits).view(1, 1)
        logits = model(tok, cache=cache, logits_to_keep=1)[0, -1]
    t2 = time.perf_counter()
    return {
        "prefill_tokens": prefill,
        "prefill_s": t1 - t0,
        "prefill_tokens_per_s": prefill / (t1 - t0),
        "decode_tokens": decode,
        "decode_s": t2 - t1,
        "decode_tokens_per_s": decode / (t2 - t1) if decode else 0.0,
        "peak_rss_mib": peak_rss_mib(),
    }


def bench_train(model, batch_tokens, steps, rank, alpha, targets, seq_len, seed=0, lr=1e-4):
    """LoRA training steps on random tokens: batch_tokens per step in rows of seq_len.
    The first (warm-up) step is not timed."""
    seq_len = seq_len or batch_tokens
    rows = max(1, batch_tokens // seq_len)
    cfg = LoraConfig(r=rank, lora_alpha=alpha, target_modules=targets)
    inject(model, cfg, seed=seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    ids = torch.randint(0, model.config.vocab_size, (rows, seq_len),
                        generator=torch.Generator().manual_seed(seed))
    losses, step_s = [], []
    for step in range(steps + 1):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = causal_lm_loss(model(ids), ids)
        loss.backward()
        opt.step()
        if step > 0:
            step_s.append(time.perf_counter() - t0)
            losses.append(loss.item())
    total = sum(step_s)
    return {
        "batch_tokens": rows * seq_len,
        "rows": rows,
        "seq_len": seq_len,
        "steps": steps,
        "rank": rank,
        "targets": targets,
        "trainable_params": sum(p.numel() for p in params),
        "step_s": step_s,
        "tokens_per_s": rows * seq_len * steps / total if total > 0 else 0.0,
        "losses": losses,
        "peak_rss_mib": peak_rss_mib(),
    }
