"""Decoder-only causal LM matching transformers' Qwen3ForCausalLM, Qwen2ForCausalLM and
LlamaForCausalLM (eager attention path), written from modeling_qwen3.py / modeling_qwen2.py /
modeling_llama.py. Module names equal the HF module tree, so state_dict() keys are the
checkpoint keys (model.layers.0.self_attn.q_proj.weight, ...) and PEFT adapter keys are
"base_model.model." + module path.

Padding convention (both sides work): the caller passes attention_mask (1 = real token,
0 = padding) covering past + new tokens; position ids are cumsum(mask) - 1 (clamped at 0
on padding), as transformers' GenerationMixin does for left padding. Padded keys are
masked out, so a real token's output does not depend on padding on either side.
Outputs at padded positions are meaningless; callers zero them.

Shapes: B batch, T new tokens, S past + new tokens, C hidden, H query heads,
K kv heads, D head_dim, V vocab.
"""

import torch
import torch.nn.functional as F
from torch import nn

from errors import InputError
from hf_config import load_config, rope_inv_freq
from safetensors_io import load_checkpoint


class RMSNorm(nn.Module):
    """Qwen3RMSNorm / LlamaRMSNorm: normalise in float32, cast back, then scale."""

    def __init__(self, size, eps, device=None):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size, device=device))
        self.eps = eps

    def forward(self, x):
        input_dtype = x.dtype
        h = x.to(_compute_dtype(input_dtype))
        variance = h.pow(2).mean(-1, keepdim=True)
        h = h * torch.rsqrt(variance + self.eps)
        return self.weight * h.to(input_dtype)


def _compute_dtype(dtype):
    """HF computes norms and RoPE in float32. float64 (a test-only mode, for finite
    differences) stays float64 instead of being rounded to float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def rotary_cos_sin(inv_freq, position_ids, dtype):
    """Qwen3RotaryEmbedding.forward: (B, T) positions -> cos, sin (B, T, D), computed in fp32."""
    cdt = _compute_dtype(dtype)
    inv = inv_freq[None, :, None].to(cdt).expand(position_ids.shape[0], -1, 1)  # (B, D/2, 1)
    pos = position_ids[:, None, :].to(cdt)  # (B, 1, T)
    freqs = (inv @ pos).transpose(1, 2)  # (B, T, D/2)
    emb = torch.cat((freqs, freqs), dim=-1)  # (B, T, D)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def repeat_kv(x, n_rep):
    """(B, K, S, D) -> (B, K*n_rep, S, D); kv head j serves query heads j*n_rep .. +n_rep-1."""
    b, k, s, d = x.shape
    if n_rep == 1:
        return x
    return x[:, :, None, :, :].expand(b, k, n_rep, s, d).reshape(b, k * n_rep, s, d)


class KVCache:
    """Per-layer keys/values after RoPE, (B, K, S, D), plus the attention mask (B, S) of
    every token seen so far. Grows by concatenation (transformers' DynamicCache)."""

    def __init__(self, num_layers):
        self.keys = [None] * num_layers
        self.values = [None] * num_layers
        self.mask = None

    def length(self):
        return 0 if self.mask is None else self.mask.shape[1]

    def update(self, layer, k, v):
        if self.keys[layer] is not None:
            k = torch.cat([self.keys[layer], k], dim=2)
            v = torch.cat([self.values[layer], v], dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v


class Attention(nn.Module):
    def __init__(self, cfg, layer_idx, device):
        super().__init__()
        self.layer_idx = layer_idx
        self.num_heads = cfg.num_attention_heads
        self.num_kv_heads = cfg.num_key_value_heads
        self.head_dim = cfg.head_dim
        self.scaling = cfg.head_dim ** -0.5
        c, d = cfg.hidden_size, cfg.head_dim
        self.q_proj = nn.Linear(c, self.num_heads * d, bias=cfg.qkv_bias, device=device)
        self.k_proj = nn.Linear(c, self.num_kv_heads * d, bias=cfg.qkv_bias, device=device)
        self.v_proj = nn.Linear(c, self.num_kv_heads * d, bias=cfg.qkv_bias, device=device)
        self.o_proj = nn.Linear(self.num_heads * d, c, bias=cfg.o_bias, device=device)
        if cfg.qk_norm:
            self.q_norm = RMSNorm(d, cfg.rms_norm_eps, device)
            self.k_norm = RMSNorm(d, cfg.rms_norm_eps, device)
        else:
            self.q_norm = self.k_norm = None

    def forward(self, x, cos, sin, allowed, cache):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.num_heads, self.head_dim)  # (B, T, H, D)
        k = self.k_proj(x).view(b, t, self.num_kv_heads, self.head_dim)  # (B, T, K, D)
        v = self.v_proj(x).view(b, t, self.num_kv_heads, self.head_dim)
        if self.q_norm is not None:  # Qwen3: per head, over D, before RoPE
            q = self.q_norm(q)
            k = self.k_norm(k)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, *, T, D)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache is not None:
            k, v = cache.update(self.layer_idx, k, v)  # (B, K, S, D)
        n_rep = self.num_heads // self.num_kv_heads
        k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)  # (B, H, S, D)
        scores = torch.matmul(q, k.transpose(2, 3)) * self.scaling  # (B, H, T, S)
        scores = scores.masked_fill(~allowed[:, None], torch.finfo(scores.dtype).min)
        probs = F.softmax(scores, dim=-1, dtype=_compute_dtype(q.dtype)).to(q.dtype)
        out = torch.matmul(probs, v).transpose(1, 2).reshape(b, t, -1)  # (B, T, H*D)
        return self.o_proj(out)


class MLP(nn.Module):
    def __init__(self, cfg, device):
        super().__init__()
        c, i, bias = cfg.hidden_size, cfg.intermediate_size, cfg.mlp_bias
        self.gate_proj = nn.Linear(c, i, bias=bias, device=device)
        self.up_proj = nn.Linear(c, i, bias=bias, device=device)
        self.down_proj = nn.Linear(i, c, bias=bias, device=device)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg, layer_idx, device):
        super().__init__()
        self.self_attn = Attention(cfg, layer_idx, device)
        self.mlp = MLP(cfg, device)
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, device)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, device)

    def forward(self, x, cos, sin, allowed, cache):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, allowed, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class DecoderModel(nn.Module):
    def __init__(self, cfg, device):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size, device=device)
        self.layers = nn.ModuleList(DecoderLayer(cfg, i, device) for i in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, device)


class CausalLM(nn.Module):
    def __init__(self, cfg, device=None):
        super().__init__()
        self.config = cfg
        self.model = DecoderModel(cfg, device)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False, device=device)
        # Plain attributes, not buffers: Module.to(dtype) must not round them.
        self.inv_freq = rope_inv_freq(cfg)  # float32, as HF computes it
        self.inv_freq64 = rope_inv_freq(cfg, torch.float64)  # for the float64 test mode
        self.tie()

    def tie(self):
        if self.config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def forward(self, input_ids, attention_mask=None, position_ids=None, cache=None,
                return_hidden=False, logits_to_keep=0):
        """input_ids (B, T) -> float32 logits (B, T, V) (float64 for a float64 model).

        attention_mask: (B, S) over past + new tokens, or (B, T) over the new ones only
        (the cached mask is prepended); None = all real. position_ids: (B, T); None =
        cumsum(mask) - 1. cache: a KVCache, extended in place. return_hidden: also return
        the residual stream [embeddings, after each layer..., after the final norm].
        logits_to_keep: as HF, > 0 computes logits for the last that many positions only.
        """
        b, t = input_ids.shape
        past = cache.length() if cache is not None else 0
        if attention_mask is None:
            attention_mask = torch.ones(b, t, dtype=torch.long)
        attention_mask = attention_mask.to(torch.long)
        if attention_mask.shape == (b, t) and past > 0:
            attention_mask = torch.cat([cache.mask, attention_mask], dim=1)
        if attention_mask.shape != (b, past + t):
            raise InputError(f"attention_mask shape {tuple(attention_mask.shape)} does not fit "
                             f"{b} sequences of {past} cached + {t} new tokens")
        if cache is not None:
            cache.mask = attention_mask
        if position_ids is None:
            position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)[:, past:]
        # allowed[b, i, j]: query past+i may attend key j (causal and key not padding)
        causal = torch.arange(past + t)[None, :] <= torch.arange(past, past + t)[:, None]  # (T, S)
        allowed = causal[None] & attention_mask[:, None, :].bool()  # (B, T, S)

        h = self.model.embed_tokens(input_ids)  # (B, T, C)
        inv_freq = self.inv_freq64 if h.dtype == torch.float64 else self.inv_freq
        cos, sin = rotary_cos_sin(inv_freq, position_ids, h.dtype)
        hidden = [h]
        for layer in self.model.layers:
            h = layer(h, cos, sin, allowed, cache)
            hidden.append(h)
        h = self.model.norm(h)
        hidden.append(h)
        kept = h[:, -logits_to_keep:] if logits_to_keep > 0 else h
        logits = self.lm_head(kept).to(_compute_dtype(h.dtype))  # (B, T, V)
        return (logits, hidden) if return_hidden else logits


def expected_weight_names(model):
    names = list(model.state_dict())
    if model.config.tie_word_embeddings:
        names.remove("lm_head.weight")
    return names


def load_weights(model, tensors):
    """Copies checkpoint tensors into the model (converting dtype). A missing, extra or
    mis-shaped tensor is an InputError that names the key and both shapes."""
    state = model.state_dict()
    expected = expected_weight_names(model)
    missing = [n for n in expected if n not in tensors]
    if missing:
        raise InputError(f"checkpoint lacks {len(missing)} tensors, e.g. {missing[:3]}")
    ignorable = {"lm_head.weight"} if model.config.tie_word_embeddings else set()
    extra = [n for n in tensors if n not in expected and n not in ignorable
             and not n.endswith("rotary_emb.inv_freq")]
    if extra:
        raise InputError(f"checkpoint has {len(extra)} unexpected tensors, e.g. {sorted(extra)[:3]}")
    with torch.no_grad():
        for name in expected:
            src, dst = tensors[name], state[name]
            if tuple(src.shape) != tuple(dst.shape):
                raise InputError(f"tensor {name}: checkpoint shape {tuple(src.shape)}, "
                                 f"model expects {tuple(dst.shape)}")
            dst.copy_(src.to(dst.dtype))


def load_model(model_dir, dtype=torch.float32):
    """config.json + safetensors weights -> CausalLM in eval mode, parameters frozen."""
    cfg = load_config(model_dir)
    tensors = load_checkpoint(model_dir)
    model = CausalLM(cfg, device="meta")
    model.to_empty(device="cpu")
    model.to(dtype)
    model.tie()  # to_empty/to may have split the shared tensor
    load_weights(model, tensors)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
