import math
import os
import unittest

import torch

from errors import InputError
from hf_config import config_from_dict, rope_inv_freq
from hf_model import CausalLM, KVCache, expected_weight_names, load_model
from infer import greedy_generate, logits_batch, logits_cached, logits_single
from safetensors_io import read_safetensors, write_safetensors
from tests import numpy_peer
from tests.util import TempDirTest, small_model
from tiny_model import tiny_config


class NumpyPeerTest(unittest.TestCase):
    """The torch decoder against the naive float64 numpy forward."""

    def check(self, arch, **kw):
        model = small_model(arch, seed=3, dtype=torch.float64, **kw)
        ids = [5, 17, 250, 3, 99, 42, 7]
        got = logits_single(model, ids).numpy()
        w = {k: v.numpy() for k, v in model.state_dict().items()
             if not (k == "lm_head.weight" and model.config.tie_word_embeddings)}
        want = numpy_peer.forward(w, model.config, ids)
        self.assertEqual(got.shape, want.shape)
        self.assertLess(abs(got - want).max(), 1e-9, arch)

    def test_qwen3(self):
        self.check("qwen3")

    def test_qwen3_tied_mha(self):
        self.check("qwen3", tied=True, kv_heads=4)

    def test_qwen2_bias(self):
        self.check("qwen2", head_dim=8, hidden=32)

    def test_llama(self):
        self.check("llama")


class DecoderTest(TempDirTest, unittest.TestCase):
    def test_cache_equals_full(self):
        for arch in ("qwen3", "qwen2", "llama"):
            model = small_model(arch, seed=1)
            ids = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
            full = logits_single(model, ids)
            for split in (1, 4, len(ids)):
                cached = logits_cached(model, ids, split)
                self.assertLess((cached - full).abs().max().item(), 1e-5, (arch, split))

    def test_batch_with_padding_equals_single(self):
        model = small_model("qwen3", seed=2)
        rows = [[5, 6, 7, 8, 9, 10], [11, 12], [13, 14, 15, 16]]
        for side in ("left", "right"):
            batch = logits_batch(model, rows, side)
            self.assertEqual(tuple(batch.shape), (3, 6, model.config.vocab_size))
            for b, row in enumerate(rows):
                single = logits_single(model, row)
                self.assertLess((batch[b, : len(row)] - single).abs().max().item(), 1e-5, (side, b))
                self.assertEqual(batch[b, len(row):].abs().max().item() if len(row) < 6 else 0, 0)

    def test_left_padded_batch_decodes_with_cache(self):
        model = small_model("qwen3", seed=4)
        rows = [[5, 6, 7, 8], [9, 10]]
        ids = torch.tensor([[5, 6, 7, 8], [0, 0, 9, 10]])
        mask = torch.tensor([[1, 1, 1, 1], [0, 0, 1, 1]])
        cache = KVCache(model.config.num_hidden_layers)
        with torch.inference_mode():
            model(ids, attention_mask=mask, cache=cache)
            step = model(torch.tensor([[20], [21]]), attention_mask=torch.ones(2, 1, dtype=torch.long),
                         cache=cache)
        for b, row in enumerate(rows):
            want = logits_single(model, row + [20 + b])[-1]
            self.assertLess((step[b, 0] - want).abs().max().item(), 1e-5)

    def test_position_matters_and_causality(self):
        model = small_model("qwen3", seed=5)
        a = logits_single(model, [1, 2, 3, 4])
        b = logits_single(model, [1, 2, 3, 9])
        self.assertLess((a[:3] - b[:3]).abs().max().item(), 1e-6)  # causal: future unseen
        self.assertGreater((a[3] - b[3]).abs().max().item(), 1e-3)
        c = logits_single(model, [7, 2])
        d = logits_single(model, [8, 2])
        self.assertGreater((c[1] - d[1]).abs().max().item(), 1e-3)  # attention mixes tokens

    def test_generate_matches_argmax_of_full_forward(self):
        model = small_model("qwen3", seed=6)
        prompt = [3, 1, 4, 1, 5]
        new = greedy_generate(model, prompt, 6)
        seq = list(prompt)
        for _ in range(6):
            seq.append(int(logits_single(model, seq)[-1].argmax()))
        self.assertEqual(new, seq[len(prompt):])
        stop = greedy_generate(model, prompt, 6, eos_ids=(new[2],))
        self.assertEqual(stop, new[: new.index(new[2]) + 1])

    def test_matvec_linear_same_logits(self):
        from bench import matvec_linear
        model = small_model("qwen2", seed=9, hidden=32, head_dim=8)
        cache_a, cache_b = KVCache(2), KVCache(2)
        with torch.inference_mode():
            model(torch.tensor([[1, 2, 3]]), cache=cache_a)
            a = model(torch.tensor([[4]]), cache=cache_a)
            with matvec_linear():
                model(torch.tensor([[1, 2, 3]]), cache=cache_b)
                b = model(torch.tensor([[4]]), cache=cache_b)
        self.assertLess((a - b).abs().max().item(), 1e-5)
        self.assertIs(torch.nn.functional.linear, torch._C._nn.linear)

    def test_load_from_disk_and_hidden_names(self):
        path = self.write_model(arch="qwen3", seed=7)
        model = load_model(path)
        tensors, _ = read_safetensors(os.path.join(path, "model.safetensors"))
        self.assertIn("model.layers.1.self_attn.q_norm.weight", tensors)
        self.assertTrue(torch.equal(model.model.layers[1].self_attn.k_norm.weight,
                                    tensors["model.layers.1.self_attn.k_norm.weight"]))
        logits, hidden = logits_single(model, [1, 2, 3], return_hidden=True)
        self.assertEqual(len(hidden), model.config.num_hidden_layers + 2)
        self.assertTrue(torch.allclose(model.lm_head(hidden[-1]), logits))

    def test_bf16_close_to_fp32(self):
        path = self.write_model(arch="qwen3", seed=8)
        f32 = logits_single(load_model(path), [1, 2, 3, 4])
        bf16 = logits_single(load_model(path, torch.bfloat16), [1, 2, 3, 4])
        self.assertEqual(bf16.dtype, torch.float32)
        self.assertLess((f32 - bf16).abs().max().item(), 0.1 * f32.abs().max().item())


QWEN3_0_6B_CONFIG = {  # the published Qwen/Qwen3-0.6B config.json
    "architectures": ["Qwen3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
    "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
    "hidden_size": 1024, "initializer_range": 0.02, "intermediate_size": 3072,
    "max_position_embeddings": 40960, "max_window_layers": 28, "model_type": "qwen3",
    "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8,
    "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": 1000000, "sliding_window": None,
    "tie_word_embeddings": True, "torch_dtype": "bfloat16", "transformers_version": "4.51.0",
    "use_cache": True, "use_sliding_window": False, "vocab_size": 151936}


class ConfigTest(TempDirTest, unittest.TestCase):
    def test_qwen3_0_6b(self):
        cfg = config_from_dict(QWEN3_0_6B_CONFIG)
        self.assertEqual((cfg.arch, cfg.head_dim, cfg.tie_word_embeddings, cfg.qk_norm, cfg.qkv_bias),
                         ("qwen3", 128, True, True, False))
        self.assertEqual(cfg.rope_theta, 1e6)
        model = CausalLM(cfg, device="meta")
        shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        self.assertEqual(shapes["model.layers.27.self_attn.q_proj.weight"], (2048, 1024))
        self.assertEqual(shapes["model.layers.0.self_attn.k_proj.weight"], (1024, 1024))
        self.assertEqual(shapes["model.layers.0.self_attn.q_norm.weight"], (128,))
        self.assertNotIn("lm_head.weight", expected_weight_names(model))

    def test_refusals(self):
        for patch in [{"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"},
                      {"use_sliding_window": True}, {"hidden_act": "gelu"},
                      {"rope_scaling": {"rope_type": "yarn", "factor": 4.0}},
                      {"num_key_value_heads": 3}, {"hidden_size": None}]:
            with self.assertRaises(InputError, msg=patch):
                config_from_dict({**QWEN3_0_6B_CONFIG, **patch})

    def test_bf16_checkpoint_loads_as_float32(self):
        path = self.write_model(arch="qwen3", seed=10)
        st = os.path.join(path, "model.safetensors")
        tensors, _ = read_safetensors(st)
        write_safetensors(st, {k: v.bfloat16() for k, v in tensors.items()})
        model = load_model(path)
        w = model.model.layers[0].mlp.up_proj.weight
        self.assertEqual(w.dtype, torch.float32)
        self.assertTrue(torch.equal(w, tensors["model.layers.0.mlp.up_proj.weight"].bfloat16().float()))

    def test_missing_and_misshaped_weights(self):
        path = self.write_model(arch="llama", seed=11)
        st = os.path.join(path, "model.safetensors")
        tensors, _ = read_safetensors(st)
        key = "model.layers.1.mlp.down_proj.weight"
        write_safetensors(st, {**tensors, key: torch.zeros(3, 3)})
        with self.assertRaisesRegex(InputError, "down_proj"):
            load_model(path)
        write_safetensors(st, {k: v for k, v in tensors.items() if k != key})
        with self.assertRaisesRegex(InputError, "lacks"):
            load_model(path)


class RopeTest(unittest.TestCase):
    def cfg(self, scaling):
        return config_from_dict(tiny_config("llama", hidden=256, heads=2, kv_heads=2, head_dim=128,
                                            rope_theta=500000.0, rope_scaling=scaling))

    def test_default(self):
        inv = rope_inv_freq(self.cfg(None))
        self.assertEqual(inv.shape, (64,))
        self.assertAlmostEqual(inv[0].item(), 1.0)
        self.assertAlmostEqual(inv[1].item(), 500000.0 ** (-2 / 128), places=7)

    def test_linear(self):
        base = rope_inv_freq(self.cfg(None))
        lin = rope_inv_freq(self.cfg({"rope_type": "linear", "factor": 4.0}))
        self.assertTrue(torch.allclose(lin, base / 4))

    def test_llama3(self):
        s = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
             "original_max_position_embeddings": 8192}
        base = rope_inv_freq(self.cfg(None))
        l3 = rope_inv_freq(self.cfg(s))
        wavelen = 2 * math.pi / base
        high = wavelen < 8192 / 4
        low = wavelen > 8192 / 1
        self.assertTrue(torch.equal(l3[high], base[high]))  # short wavelengths untouched
        self.assertTrue(torch.allclose(l3[low], base[low] / 8))  # long ones divided by factor
        mid = ~high & ~low
        self.assertTrue(mid.any())
        self.assertTrue(((l3[mid] < base[mid]) & (l3[mid] > base[mid] / 8)).all())


if __name__ == "__main__":
    unittest.main()
