"""config.json of Qwen3ForCausalLM / Qwen2ForCausalLM / LlamaForCausalLM -> ModelConfig.

Field names and defaults follow transformers' Qwen3Config, Qwen2Config and LlamaConfig.
The architecture differences are kept as flags of one decoder (see hf_model.py):

                 q/k norm   q/k/v bias          o bias          mlp bias   head_dim default
  qwen3          yes        attention_bias      attention_bias  no         config.head_dim
  qwen2          no         always              no              no         hidden / heads
  llama          no         attention_bias      attention_bias  mlp_bias   hidden / heads
"""

import json
import math
import os
from dataclasses import dataclass, field
from typing import Optional

import torch

from errors import InputError

ARCHITECTURES = {
    "Qwen3ForCausalLM": "qwen3",
    "Qwen2ForCausalLM": "qwen2",
    "LlamaForCausalLM": "llama",
}


@dataclass
class ModelConfig:
    arch: str                      # "qwen3" | "qwen2" | "llama"
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    rope_scaling: Optional[dict]   # None, or HF rope_scaling with rope_type linear|llama3
    tie_word_embeddings: bool
    qk_norm: bool                  # Qwen3 q_norm/k_norm over head_dim
    qkv_bias: bool                 # bias on q_proj, k_proj, v_proj
    o_bias: bool                   # bias on o_proj
    mlp_bias: bool                 # bias on gate/up/down (Llama mlp_bias)
    max_position_embeddings: int
    raw: dict = field(default_factory=dict)  # the config.json as read


def _get(raw, key, default=None, required=False):
    if key in raw and raw[key] is not None:
        return raw[key]
    if required:
        raise InputError(f"config.json: missing required field '{key}'")
    return default


def config_from_dict(raw):
    if not isinstance(raw, dict):
        raise InputError("config.json: not a JSON object")
    archs = raw.get("architectures") or []
    arch = None
    for a in archs:
        arch = ARCHITECTURES.get(a, arch)
    if arch is None:
        arch = {"qwen3": "qwen3", "qwen2": "qwen2", "llama": "llama"}.get(raw.get("model_type"))
    if arch is None:
        raise InputError(
            f"config.json: unsupported architecture {archs or raw.get('model_type')!r}; "
            f"supported: {sorted(ARCHITECTURES)}")

    hidden = int(_get(raw, "hidden_size", required=True))
    heads = int(_get(raw, "num_attention_heads", required=True))
    kv_heads = int(_get(raw, "num_key_value_heads", heads))
    # HF: getattr(config, "head_dim", None) or hidden_size // num_attention_heads
    head_dim = int(_get(raw, "head_dim", hidden // heads))
    if heads % kv_heads != 0:
        raise InputError(f"config.json: num_attention_heads {heads} is not a multiple of "
                         f"num_key_value_heads {kv_heads}")
    if head_dim % 2 != 0:
        raise InputError(f"config.json: head_dim {head_dim} must be even for RoPE")
    act = _get(raw, "hidden_act", "silu")
    if act != "silu":
        raise InputError(f"config.json: hidden_act {act!r} not supported (only silu)")
    if raw.get("use_sliding_window"):
        raise InputError("config.json: use_sliding_window=true is not supported")
    if float(_get(raw, "partial_rotary_factor", 1.0)) != 1.0:
        raise InputError("config.json: partial_rotary_factor != 1 is not supported")

    # Newer transformers put rope_theta/rope_type into "rope_parameters".
    rope_params = _get(raw, "rope_parameters", {}) or {}
    rope_theta = float(_get(raw, "rope_theta", rope_params.get("rope_theta", 10000.0)))
    rope_scaling = _get(raw, "rope_scaling", None)
    if rope_scaling is None and rope_params.get("rope_type", "default") != "default":
        rope_scaling = rope_params
    if rope_scaling is not None:
        rope_type = rope_scaling.get("rope_type", rope_scaling.get("type"))
        if rope_type == "default":
            rope_scaling = None
        elif rope_type not in ("linear", "llama3"):
            raise InputError(f"config.json: rope_scaling type {rope_type!r} not supported "
                             "(default, linear, llama3)")

    attention_bias = bool(_get(raw, "attention_bias", False))
    return ModelConfig(
        arch=arch,
        vocab_size=int(_get(raw, "vocab_size", required=True)),
        hidden_size=hidden,
        intermediate_size=int(_get(raw, "intermediate_size", required=True)),
        num_hidden_layers=int(_get(raw, "num_hidden_layers", required=True)),
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=head_dim,
        rms_norm_eps=float(_get(raw, "rms_norm_eps", 1e-6)),
        rope_theta=rope_theta,
        rope_scaling=rope_scaling,
        # Qwen3Config, Qwen2Config and LlamaConfig all default to untied.
        tie_word_embeddings=bool(_get(raw, "tie_word_embeddings", False)),
        qk_norm=arch == "qwen3",
        qkv_bias=True if arch == "qwen2" else attention_bias,
        o_bias=False if arch == "qwen2" else attention_bias,
        mlp_bias=bool(_get(raw, "mlp_bias", False)) if arch == "llama" else False,
        max_position_embeddings=int(_get(raw, "max_position_embeddings", 32768)),
        raw=raw,
    )


def load_config(model_dir):
    path = os.path.join(model_dir, "config.json")
    if not os.path.isfile(path):
        raise InputError(f"{model_dir}: no config.json")
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: invalid JSON: {e}") from None
    return config_from_dict(raw)


def rope_inv_freq(cfg, dtype=torch.float32):
    """inv_freq as transformers.modeling_rope_utils computes it (in float32):
    _compute_default_rope_parameters, _compute_linear_scaling_rope_parameters,
    _compute_llama3_parameters. All three have attention_factor 1. dtype float64 is
    for the float64 test mode only."""
    dim = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.int64).to(dtype) / dim))
    s = cfg.rope_scaling
    if s is None:
        return inv_freq
    rope_type = s.get("rope_type", s.get("type"))
    try:
        if rope_type == "linear":
            return inv_freq / float(s["factor"])
        # llama3
        factor = float(s["factor"])
        low_freq_factor = float(s["low_freq_factor"])
        high_freq_factor = float(s["high_freq_factor"])
        old_context_len = float(s["original_max_position_embeddings"])
    except KeyError as e:
        raise InputError(f"config.json: rope_scaling {rope_type} lacks field {e}") from None
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    smoothed = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
    is_medium = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    return torch.where(is_medium, smoothed, inv_freq_llama)
