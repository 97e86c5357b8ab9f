"""LoRA adapters with PEFT semantics (peft/tuners/lora: LoraConfig, LoraLayer.update_layer,
LoraLayer.reset_lora_parameters, Linear.forward, BaseTuner._check_target_module_exists,
get_peft_model_state_dict / save_pretrained).

  y = base_layer(x) + lora_B(lora_A(x)) * scaling,  scaling = lora_alpha / r
                                                      (use_rslora: lora_alpha / sqrt(r))
  init: lora_A kaiming_uniform_(a=sqrt(5)), lora_B zeros (init_lora_weights=True).

On disk (save_pretrained): adapter_config.json and adapter_model.safetensors with keys
"base_model.model.<module path>.lora_A.weight" (r, in) and ".lora_B.weight" (out, r); the
adapter name ".default" is stripped. lora_dropout is recorded but never applied here:
the reference must be deterministic (see README.md).
"""

import json
import math
import os
import re
from dataclasses import dataclass, field

import torch
from torch import nn

from errors import InputError
from safetensors_io import read_safetensors, write_safetensors

DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
KEY_PREFIX = "base_model.model."


@dataclass
class LoraConfig:
    r: int = 8
    lora_alpha: float = 8
    target_modules: object = field(default_factory=lambda: list(DEFAULT_TARGETS))  # list or regex str
    lora_dropout: float = 0.0
    use_rslora: bool = False
    base_model_name_or_path: str = ""
    rank_pattern: dict = field(default_factory=dict)
    alpha_pattern: dict = field(default_factory=dict)

    def to_json(self):
        targets = self.target_modules
        if not isinstance(targets, str):
            targets = sorted(set(targets))  # PEFT keeps a set and saves it as a list
        return {
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "base_model_name_or_path": self.base_model_name_or_path,
            "revision": None,
            "r": self.r,
            "lora_alpha": self.lora_alpha,
            "lora_dropout": self.lora_dropout,
            "target_modules": targets,
            "bias": "none",
            "fan_in_fan_out": False,
            "use_rslora": self.use_rslora,
            "use_dora": False,
            "modules_to_save": None,
            "init_lora_weights": True,
            "layers_to_transform": None,
            "layers_pattern": None,
            "rank_pattern": dict(self.rank_pattern),
            "alpha_pattern": dict(self.alpha_pattern),
            "inference_mode": True,
        }

    @staticmethod
    def from_json(raw, where="adapter_config.json"):
        """Validates a PEFT config; refuses what vLLM and this reference cannot serve."""
        if not isinstance(raw, dict):
            raise InputError(f"{where}: not a JSON object")

        def bad(msg):
            return InputError(f"{where}: {msg}")

        if raw.get("peft_type") != "LORA":
            raise bad(f"peft_type is {raw.get('peft_type')!r}, expected 'LORA'")
        if raw.get("task_type", "CAUSAL_LM") != "CAUSAL_LM":
            raise bad(f"task_type is {raw.get('task_type')!r}, expected 'CAUSAL_LM'")
        if raw.get("bias", "none") != "none":
            raise bad(f"bias {raw.get('bias')!r} not supported (only 'none')")
        if raw.get("use_dora"):
            raise bad("use_dora=true not supported")
        if raw.get("fan_in_fan_out"):
            raise bad("fan_in_fan_out=true not supported")
        if raw.get("modules_to_save"):
            raise bad("modules_to_save not supported")
        if raw.get("layers_to_transform") is not None:
            raise bad("layers_to_transform not supported")
        r, alpha = raw.get("r"), raw.get("lora_alpha")
        if not isinstance(r, int) or isinstance(r, bool) or r <= 0:
            raise bad(f"r must be a positive integer, got {r!r}")
        if not isinstance(alpha, (int, float)) or isinstance(alpha, bool):
            raise bad(f"lora_alpha must be a number, got {alpha!r}")
        targets = raw.get("target_modules")
        if not targets or not isinstance(targets, (list, str)):
            raise bad(f"target_modules must be a non-empty list or regex, got {targets!r}")
        return LoraConfig(r=r, lora_alpha=alpha, target_modules=targets,
                          lora_dropout=float(raw.get("lora_dropout") or 0.0),
                          use_rslora=bool(raw.get("use_rslora", False)),
                          base_model_name_or_path=raw.get("base_model_name_or_path") or "",
                          rank_pattern=raw.get("rank_pattern") or {},
                          alpha_pattern=raw.get("alpha_pattern") or {})


def matches_target(module_name, targets):
    """BaseTuner._check_target_module_exists: a regex string must fullmatch the module
    path; a list matches an exact path or a path ending in '.<target>'; "all-linear"
    (tuners_utils._maybe_include_all_linear_layers) is every linear but the output layer."""
    if targets == "all-linear":
        return module_name != "lm_head"
    if isinstance(targets, str):
        return re.fullmatch(targets, module_name) is not None
    return module_name in targets or any(module_name.endswith("." + t) for t in targets)


def _pattern_value(module_name, pattern, default):
    """PEFT's rank_pattern/alpha_pattern lookup: first key k with re.match(rf"(.*\\.)?{k}$")."""
    for key, value in pattern.items():
        if re.match(rf"(.*\.)?{key}$", module_name):
            return value
    return default


class LoraLinear(nn.Module):
    """peft.tuners.lora.Linear for one adapter: frozen base_layer + trainable lora_A/lora_B."""

    def __init__(self, base_layer, r, lora_alpha, use_rslora):
        super().__init__()
        self.base_layer = base_layer
        dtype = base_layer.weight.dtype
        self.lora_A = nn.Linear(base_layer.in_features, r, bias=False, dtype=dtype)
        self.lora_B = nn.Linear(r, base_layer.out_features, bias=False, dtype=dtype)
        self.scaling = lora_alpha / math.sqrt(r) if use_rslora else lora_alpha / r
        self.reset_parameters()

    def reset_parameters(self):
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)

    def forward(self, x):
        return self.base_layer(x) + self.lora_B(self.lora_A(x)) * self.scaling


def inject(model, cfg, seed=None, random_b_std=0.0):
    """Wraps every nn.Linear whose module path matches cfg.target_modules in a LoraLinear,
    in named_modules order. seed: torch.manual_seed before the first init, so the same
    seed gives the same adapter. random_b_std > 0 draws B ~ N(0, std) instead of zeros
    (for tests: a zero B hides every bug in B's path). Returns the number of modules wrapped.
    """
    if seed is not None:
        torch.manual_seed(seed)
    if any(isinstance(m, LoraLinear) for m in model.modules()):
        raise InputError("model already has a LoRA adapter")
    names = [n for n, m in model.named_modules()
             if isinstance(m, nn.Linear) and matches_target(n, cfg.target_modules)]
    if not names:
        raise InputError(f"target_modules {cfg.target_modules!r} match no linear layer")
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        r = int(_pattern_value(name, cfg.rank_pattern, cfg.r))
        alpha = _pattern_value(name, cfg.alpha_pattern, cfg.lora_alpha)
        lora = LoraLinear(getattr(parent, child), r, alpha, cfg.use_rslora)
        if random_b_std > 0:
            nn.init.normal_(lora.lora_B.weight, std=random_b_std)
        setattr(parent, child, lora)
    for n, p in model.named_parameters():
        p.requires_grad_(".lora_A." in n or ".lora_B." in n)
    return len(names)


def lora_parameters(model):
    """[(PEFT key, Parameter)] sorted by key: the trainable state of the adapter."""
    out = []
    for name, module in model.named_modules():
        if isinstance(module, LoraLinear):
            out.append((f"{KEY_PREFIX}{name}.lora_A.weight", module.lora_A.weight))
            out.append((f"{KEY_PREFIX}{name}.lora_B.weight", module.lora_B.weight))
    return sorted(out, key=lambda kv: kv[0])


def save_adapter(model, cfg, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    tensors = {k: p.detach().to(torch.float32).clone() for k, p in lora_parameters(model)}
    write_safetensors(os.path.join(out_dir, "adapter_model.safetensors"), tensors,
                      metadata={"format": "pt"})
    with open(os.path.join(out_dir, "adapter_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg.to_json(), f, indent=2, sort_keys=True)
        f.write("\n")


def read_adapter_config(adapter_dir):
    path = os.path.join(adapter_dir, "adapter_config.json")
    if not os.path.isfile(path):
        raise InputError(f"{adapter_dir}: no adapter_config.json")
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: invalid JSON: {e}") from None
    return LoraConfig.from_json(raw, path)


def load_adapter(model, adapter_dir):
    """Injects and fills the adapter in adapter_dir. Every target module must have both
    tensors with the shapes its config implies; missing, extra or mis-shaped keys are an
    InputError naming the key. Returns the LoraConfig."""
    cfg = read_adapter_config(adapter_dir)
    path = os.path.join(adapter_dir, "adapter_model.safetensors")
    tensors, _ = read_safetensors(path)
    inject(model, cfg)
    params = dict(lora_parameters(model))
    missing = sorted(set(params) - set(tensors))
    extra = sorted(set(tensors) - set(params))
    if missing:
        raise InputError(f"{path}: lacks {len(missing)} tensors, e.g. {missing[:3]}")
    if extra:
        raise InputError(f"{path}: {len(extra)} tensors match no target module, e.g. {extra[:3]}")
    with torch.no_grad():
        for key, p in params.items():
            t = tensors[key]
            if tuple(t.shape) != tuple(p.shape):
                raise InputError(f"{path}: tensor {key} has shape {tuple(t.shape)}, "
                                 f"the config implies {tuple(p.shape)}")
            p.copy_(t.to(p.dtype))
    return cfg
