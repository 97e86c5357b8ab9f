"""A second, deliberately naive forward pass in numpy float64, written from the equations
in /work/shared/REFERENCE.md (loops over positions and heads, RoPE on (i, i + D/2) pairs).
It shares no code with hf_model.py, so agreement checks the vectorised version's
transposes, GQA mapping, q/k norm placement and RoPE layout."""

import numpy as np


def _rms(x, w, eps):
    return w * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps))


def _silu(x):
    return x / (1.0 + np.exp(-x))


def _rope(vec, pos, theta, d):
    out = vec.copy()
    half = d // 2
    for i in range(half):
        angle = pos * theta ** (-2.0 * i / d)
        a, b = vec[i], vec[i + half]
        out[i] = a * np.cos(angle) - b * np.sin(angle)
        out[i + half] = b * np.cos(angle) + a * np.sin(angle)
    return out


def forward(w, cfg, ids, positions=None):
    """w: name -> numpy float64 array (HF keys); returns (T, V) logits."""
    g = lambda n: w[n]  # noqa: E731
    eps, d = cfg.rms_norm_eps, cfg.head_dim
    nh, nkv = cfg.num_attention_heads, cfg.num_key_value_heads
    rep = nh // nkv
    t_len = len(ids)
    positions = list(range(t_len)) if positions is None else positions
    x = g("model.embed_tokens.weight")[ids].astype(np.float64)  # (T, C)
    for layer in range(cfg.num_hidden_layers):
        p = f"model.layers.{layer}."
        h = _rms(x, g(p + "input_layernorm.weight"), eps)
        proj = {}
        for name in ("q", "k", "v"):
            y = h @ g(p + f"self_attn.{name}_proj.weight").T
            if p + f"self_attn.{name}_proj.bias" in w:
                y = y + g(p + f"self_attn.{name}_proj.bias")
            proj[name] = y.reshape(t_len, -1, d)
        q, k, v = proj["q"], proj["k"], proj["v"]
        if cfg.qk_norm:
            q = _rms(q, g(p + "self_attn.q_norm.weight"), eps)
            k = _rms(k, g(p + "self_attn.k_norm.weight"), eps)
        q = np.stack([[_rope(q[t, hh], positions[t], cfg.rope_theta, d) for hh in range(nh)]
                      for t in range(t_len)])
        k = np.stack([[_rope(k[t, hh], positions[t], cfg.rope_theta, d) for hh in range(nkv)]
                      for t in range(t_len)])
        att = np.zeros((t_len, nh, d))
        for t in range(t_len):
            for hh in range(nh):
                kv = hh // rep
                s = np.array([q[t, hh] @ k[j, kv] for j in range(t + 1)]) / np.sqrt(d)
                s = np.exp(s - s.max())
                s /= s.sum()
                att[t, hh] = sum(s[j] * v[j, kv] for j in range(t + 1))
        o = att.reshape(t_len, -1) @ g(p + "self_attn.o_proj.weight").T
        if p + "self_attn.o_proj.bias" in w:
            o = o + g(p + "self_attn.o_proj.bias")
        x = x + o
        h = _rms(x, g(p + "post_attention_layernorm.weight"), eps)
        gate = h @ g(p + "mlp.gate_proj.weight").T
        up = h @ g(p + "mlp.up_proj.weight").T
        x = x + (_silu(gate) * up) @ g(p + "mlp.down_proj.weight").T
    x = _rms(x, g("model.norm.weight"), eps)
    head = w.get("lm_head.weight", g("model.embed_tokens.weight"))
    return x @ head.T
