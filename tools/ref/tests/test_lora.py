import json
import math
import os
import unittest

import torch

from errors import InputError
from infer import logits_single
from lora import LoraConfig, LoraLinear, inject, load_adapter, lora_parameters, save_adapter
from safetensors_io import read_safetensors, write_safetensors
from tests.util import TempDirTest, small_model

IDS = [4, 8, 15, 16, 23, 42]


def merged_model(lora_model, arch="qwen3", seed=0):
    """A plain model whose weights are W + scaling * B @ A: PEFT's merge_and_unload."""
    plain = small_model(arch, seed=seed)
    modules = dict(lora_model.named_modules())
    with torch.no_grad():
        for name, m in plain.named_modules():
            lora = modules.get(name)
            if isinstance(lora, LoraLinear):
                m.weight += lora.scaling * lora.lora_B.weight @ lora.lora_A.weight
    return plain


class LoraTest(TempDirTest, unittest.TestCase):
    def test_zero_b_equals_base(self):
        base = logits_single(small_model(seed=0), IDS)
        model = small_model(seed=0)
        self.assertEqual(inject(model, LoraConfig(r=4, lora_alpha=8), seed=1), 2 * 7)
        self.assertTrue(torch.equal(logits_single(model, IDS), base))
        a = model.model.layers[0].self_attn.q_proj.lora_A.weight
        bound = 1 / math.sqrt(a.shape[1])  # kaiming_uniform(a=sqrt(5)) on fan_in
        self.assertLessEqual(a.abs().max().item(), bound)
        self.assertGreater(a.abs().max().item(), 0.5 * bound)

    def test_forward_equals_merged_weights(self):
        for rslora in (False, True):
            model = small_model(seed=0)
            cfg = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj", "down_proj"],
                             use_rslora=rslora)
            self.assertEqual(inject(model, cfg, seed=2, random_b_std=0.1), 6)
            lora = model.model.layers[1].mlp.down_proj
            self.assertEqual(lora.scaling, 16 / 2 if rslora else 16 / 4)
            got = logits_single(model, IDS)
            want = logits_single(merged_model(model), IDS)
            self.assertLess((got - want).abs().max().item(), 1e-4)
            self.assertGreater((got - logits_single(small_model(seed=0), IDS)).abs().max().item(), 1e-3)

    def test_save_load_round_trip_peft_layout(self):
        model = small_model(seed=0)
        cfg = LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "gate_proj"],
                         base_model_name_or_path="tiny")
        inject(model, cfg, seed=3, random_b_std=0.05)
        out = os.path.join(self.tmp, "adapter")
        save_adapter(model, cfg, out)
        with open(os.path.join(out, "adapter_config.json")) as f:
            raw = json.load(f)
        for key, value in {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 2, "lora_alpha": 4,
                           "bias": "none", "fan_in_fan_out": False, "use_rslora": False,
                           "use_dora": False, "modules_to_save": None, "inference_mode": True,
                           "base_model_name_or_path": "tiny",
                           "target_modules": ["gate_proj", "q_proj"]}.items():
            self.assertEqual(raw[key], value, key)
        tensors, _ = read_safetensors(os.path.join(out, "adapter_model.safetensors"))
        a = tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"]
        b = tensors["base_model.model.model.layers.1.mlp.gate_proj.lora_B.weight"]
        self.assertEqual(tuple(a.shape), (2, 32))
        self.assertEqual(tuple(b.shape), (48, 2))
        self.assertEqual(len(tensors), 2 * 2 * 2)
        loaded = small_model(seed=0)
        load_adapter(loaded, out)
        self.assertTrue(torch.equal(logits_single(loaded, IDS), logits_single(model, IDS)))

    def test_bad_adapters_are_refused(self):
        model = small_model(seed=0)
        cfg = LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"])
        inject(model, cfg, seed=3)
        good = os.path.join(self.tmp, "good")
        save_adapter(model, cfg, good)
        with open(os.path.join(good, "adapter_config.json")) as f:
            raw = json.load(f)
        tensors, _ = read_safetensors(os.path.join(good, "adapter_model.safetensors"))

        def variant(name, config_patch=None, tensor_fn=None):
            d = os.path.join(self.tmp, name)
            os.makedirs(d)
            with open(os.path.join(d, "adapter_config.json"), "w") as f:
                json.dump({**raw, **(config_patch or {})}, f)
            t = tensor_fn(dict(tensors)) if tensor_fn else tensors
            write_safetensors(os.path.join(d, "adapter_model.safetensors"), t)
            return d

        key = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
        bad = [
            variant("dora", {"use_dora": True}),
            variant("bias", {"bias": "all"}),
            variant("save", {"modules_to_save": ["lm_head"]}),
            variant("type", {"peft_type": "IA3"}),
            variant("rank", {"r": 3}),
            variant("missing", tensor_fn=lambda t: {k: v for k, v in t.items() if k != key}),
            variant("extra", tensor_fn=lambda t: {**t, "base_model.model.x.lora_A.weight": torch.ones(1)}),
            variant("default", tensor_fn=lambda t: {k.replace(".weight", ".default.weight"): v
                                                     for k, v in t.items()}),
        ]
        for d in bad:
            with self.assertRaises(InputError, msg=d):
                load_adapter(small_model(seed=0), d)
        with self.assertRaises(InputError):
            load_adapter(small_model(seed=0), os.path.join(self.tmp, "nowhere"))

    def test_regex_targets_and_rank_pattern(self):
        model = small_model(seed=0)
        cfg = LoraConfig(r=2, lora_alpha=4, target_modules=r".*layers\.1\.self_attn\.(q|k)_proj",
                         rank_pattern={"k_proj": 3})
        self.assertEqual(inject(model, cfg), 2)
        names = [k for k, _ in lora_parameters(model)]
        self.assertEqual(len(names), 4)
        self.assertEqual(model.model.layers[1].self_attn.k_proj.lora_A.weight.shape[0], 3)
        self.assertEqual(model.model.layers[1].self_attn.q_proj.lora_A.weight.shape[0], 2)
        everything = small_model(seed=0)
        self.assertEqual(inject(everything, LoraConfig(r=2, target_modules="all-linear")), 2 * 7)
        self.assertIsInstance(everything.lm_head, torch.nn.Linear)


if __name__ == "__main__":
    unittest.main()
