"""Helpers shared by the self-tests: small random models in temp dirs, CLI runner."""

import os
import subprocess
import sys
import tempfile

import torch

from hf_config import config_from_dict
from hf_model import CausalLM, load_model, load_weights
from tiny_model import make_model, random_weights, tiny_config

REF_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF_PY = os.path.join(REF_DIR, "ref.py")

# Small enough for fast tests; GQA (4 query heads on 2 kv heads) on purpose.
SMALL = dict(hidden=32, layers=2, heads=4, kv_heads=2, head_dim=8, intermediate=48, vocab=300)


def small_model(arch="qwen3", seed=0, dtype=torch.float32, std=0.2, **overrides):
    """An in-memory model with random weights (no files). std 0.2 makes logits peaky."""
    kw = dict(SMALL)
    kw.update(overrides)
    cfg = config_from_dict(tiny_config(arch, **kw))
    model = CausalLM(cfg)
    model.tie()
    load_weights(model, random_weights(cfg, seed, std))
    model.to(dtype).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


class TempDirTest:
    """Mixin: self.tmp is a fresh directory per test."""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="kaizen_ref_")
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def write_model(self, name="model", arch="qwen3", seed=0, std=0.2, **overrides):
        kw = dict(SMALL)
        kw.update(overrides)
        path = os.path.join(self.tmp, name)
        make_model(path, arch, seed, std=std, **kw)
        return path


def run_cli(*args):
    """Runs ref.py with Debian's python; returns CompletedProcess (text)."""
    return subprocess.run([sys.executable, REF_PY, *map(str, args)],
                          capture_output=True, text=True, timeout=120)


__all__ = ["small_model", "TempDirTest", "run_cli", "load_model", "SMALL", "REF_DIR"]
