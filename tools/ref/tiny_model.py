"""Random tiny models in HF layout (config.json + model.safetensors), for testing the
reference itself. Deterministic in the seed. Norm weights are drawn around 1 (not set
to exactly 1 as HF's init does) so that a decoder that skips or misplaces a norm weight
gives different logits."""

import json
import os

import torch

from errors import InputError
from hf_config import config_from_dict
from hf_model import CausalLM, expected_weight_names
from safetensors_io import write_safetensors

_ARCH = {
    "qwen3": ("Qwen3ForCausalLM", "qwen3"),
    "qwen2": ("Qwen2ForCausalLM", "qwen2"),
    "llama": ("LlamaForCausalLM", "llama"),
}


def tiny_config(arch, hidden=64, layers=2, heads=4, kv_heads=2, head_dim=16,
                intermediate=128, vocab=151936, tied=False, rope_theta=1e6,
                rope_scaling=None, max_position=40960):
    if arch not in _ARCH:
        raise InputError(f"unknown arch {arch!r}; expected one of {sorted(_ARCH)}")
    architecture, model_type = _ARCH[arch]
    raw = {
        "architectures": [architecture],
        "model_type": model_type,
        "hidden_size": hidden,
        "intermediate_size": intermediate,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "rms_norm_eps": 1e-6,
        "rope_theta": rope_theta,
        "rope_scaling": rope_scaling,
        "vocab_size": vocab,
        "tie_word_embeddings": tied,
        "hidden_act": "silu",
        "max_position_embeddings": max_position,
        "initializer_range": 0.02,
        "attention_dropout": 0.0,
        "use_cache": True,
        "torch_dtype": "float32",
        "bos_token_id": 151643,
        "eos_token_id": 151645 if arch == "qwen3" else 151643,
    }
    if arch == "qwen3":
        raw.update({"head_dim": head_dim, "attention_bias": False, "use_sliding_window": False,
                    "sliding_window": None, "max_window_layers": layers})
    elif arch == "qwen2":
        if head_dim * heads != hidden:
            raise InputError(f"qwen2 has head_dim = hidden/heads; {hidden}/{heads} != {head_dim}")
        raw.update({"use_sliding_window": False, "sliding_window": None, "max_window_layers": layers})
    else:
        raw.update({"head_dim": head_dim, "attention_bias": False, "mlp_bias": False,
                    "pretraining_tp": 1})
    return raw


def random_weights(cfg, seed, std=0.02):
    """name -> float32 tensor for every weight the config implies, drawn from one generator."""
    gen = torch.Generator().manual_seed(seed)
    shapes = {n: t.shape for n, t in CausalLM(cfg, device="meta").state_dict().items()}
    tensors = {}
    for name in expected_weight_names(CausalLM(cfg, device="meta")):
        shape = shapes[name]
        if "norm" in name:
            t = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        elif name.endswith(".bias"):
            t = 0.1 * torch.randn(shape, generator=gen)
        else:
            t = std * torch.randn(shape, generator=gen)
        tensors[name] = t
    return tensors


def make_model(out_dir, arch, seed, std=0.02, **kwargs):
    raw = tiny_config(arch, **kwargs)
    cfg = config_from_dict(raw)
    os.makedirs(out_dir, exist_ok=True)
    write_safetensors(os.path.join(out_dir, "model.safetensors"), random_weights(cfg, seed, std),
                      metadata={"format": "pt"})
    with open(os.path.join(out_dir, "config.json"), "w", encoding="utf-8") as f:
        json.dump(raw, f, indent=2)
        f.write("\n")
    eos = [151645, 151643] if arch == "qwen3" else [151643]
    with open(os.path.join(out_dir, "generation_config.json"), "w", encoding="utf-8") as f:
        json.dump({"bos_token_id": 151643, "eos_token_id": eos, "do_sample": False}, f, indent=2)
        f.write("\n")
    return raw
