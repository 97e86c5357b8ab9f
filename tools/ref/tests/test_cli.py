"""ref.py end to end, as the C++ tests call it: JSON on stdout, safetensors files, exit 2
on bad input. Most calls run ref.main() in-process (importing torch per call costs
seconds); a few run the real script in a subprocess."""

import contextlib
import io
import json
import os
import unittest

import torch

from hf_model import load_model
from infer import logits_single
from lora import load_adapter
from safetensors_io import read_safetensors
import ref
from tests.util import TempDirTest, run_cli


def run_in_process(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = ref.main([str(a) for a in args])
        except SystemExit as e:  # argparse
            code = e.code
    return code, out.getvalue(), err.getvalue()


class CliTest(TempDirTest, unittest.TestCase):
    def ok(self, *args, subprocess=False):
        if subprocess:
            r = run_cli(*args)
            code, out, err = r.returncode, r.stdout, r.stderr
        else:
            code, out, err = run_in_process(*args)
        self.assertEqual(code, 0, err)
        return json.loads(out)

    def fails(self, *args, needle=None, subprocess=False):
        if subprocess:
            r = run_cli(*args)
            code, out, err = r.returncode, r.stdout, r.stderr
        else:
            code, out, err = run_in_process(*args)
        self.assertEqual(code, 2, (args, out, err))
        self.assertNotIn("Traceback", err)
        self.assertTrue(err.strip(), args)
        if needle:
            self.assertIn(needle, err)

    def test_make_model_real_vocab_logits_and_cache(self):
        model = os.path.join(self.tmp, "m")
        out = self.ok("make-model", "--arch", "qwen3", "--out", model, "--seed", "3", "--tied")
        self.assertEqual(out["config"]["vocab_size"], 151936)
        self.assertEqual(out["config"]["architectures"], ["Qwen3ForCausalLM"])
        full, cached = os.path.join(self.tmp, "f.st"), os.path.join(self.tmp, "c.st")
        ids = "151644,872,198,9707,151645"
        self.assertEqual(self.ok("logits", "--model", model, "--ids", ids, "--out", full,
                                 subprocess=True)["shape"], [5, 151936])
        self.ok("logits-cached", "--model", model, "--ids", ids, "--split", "2", "--out", cached)
        a, b = read_safetensors(full)[0]["logits"], read_safetensors(cached)[0]["logits"]
        self.assertEqual(a.dtype, torch.float32)
        self.assertLess((a - b).abs().max().item(), 1e-5)

    def test_batch_generate_adapter_train(self):
        model = self.write_model(arch="qwen2", seed=1)
        batch_out = os.path.join(self.tmp, "b.st")
        self.ok("logits", "--model", model, "--batch-json", "[[1,2,3],[4,5]]", "--padding", "left",
                "--out", batch_out)
        t = read_safetensors(batch_out)[0]
        self.assertEqual(tuple(t["logits"].shape), (2, 3, 300))
        self.assertEqual(t["lengths"].tolist(), [3, 2])
        m = load_model(model)
        self.assertLess((t["logits"][1, :2] - logits_single(m, [4, 5])).abs().max().item(), 1e-5)
        self.assertEqual(t["logits"][1, 2].abs().max().item(), 0.0)

        adapter = os.path.join(self.tmp, "ad")
        self.assertEqual(self.ok("make-adapter", "--model", model, "--out", adapter, "--rank", "4",
                                 "--alpha", "8", "--targets", "q_proj,v_proj", "--seed", "1",
                                 "--random-b")["modules"], 4)
        gen = self.ok("generate", "--model", model, "--ids", "1,2,3", "--max-tokens", "5",
                      "--adapter", adapter)["ids"]
        self.assertEqual(len(gen), 5)
        load_adapter(m, adapter)
        seq = [1, 2, 3]
        for _ in range(5):
            seq.append(int(logits_single(m, seq)[-1].argmax()))
        self.assertEqual(gen, seq[3:])

        batch = os.path.join(self.tmp, "batch.json")
        with open(batch, "w") as f:
            json.dump({"input_ids": [[1, 2, 3, 4], [5, 6, 7]], "labels": [[-100, 2, 3, 4], [-100, 6, 7]]}, f)
        grads, trained = os.path.join(self.tmp, "g.st"), os.path.join(self.tmp, "trained")
        res = self.ok("train-steps", "--model", model, "--batch", batch, "--adapter-init", adapter,
                      "--steps", "4", "--lr", "1e-2", "--clip", "1.0", "--out-grads", grads,
                      "--out-adapter", trained)
        self.assertEqual(len(res["losses"]), 4)
        self.assertEqual(res["label_tokens"], 5)
        self.assertLess(res["losses"][-1], res["losses"][0])
        g = read_safetensors(grads)[0]
        self.assertEqual(len(g), 8)
        self.assertIn("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight", g)
        after = read_safetensors(os.path.join(trained, "adapter_model.safetensors"))[0]
        before = read_safetensors(os.path.join(adapter, "adapter_model.safetensors"))[0]
        self.assertEqual(sorted(after), sorted(before))
        self.assertFalse(torch.equal(after["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"],
                                     before["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"]))

    def test_bench_commands(self):
        model = self.write_model(arch="llama", seed=2)
        for extra in ([], ["--matvec"]):
            b = self.ok("bench", "--model", model, "--threads", "1", "--prefill", "16", "--decode", "4",
                        *extra)
            self.assertGreater(b["prefill_tokens_per_s"], 0)
            self.assertGreater(b["decode_tokens_per_s"], 0)
            self.assertEqual(b["matvec"], bool(extra))
        t = self.ok("bench-train", "--model", model, "--threads", "1", "--batch-tokens", "32",
                    "--steps", "2", "--rank", "4")
        self.assertGreater(t["tokens_per_s"], 0)
        self.assertGreater(t["peak_rss_mib"], 10)

    def test_bad_input_exits_2(self):
        model = self.write_model(seed=0)
        missing = os.path.join(self.tmp, "missing")
        bad_json = os.path.join(self.tmp, "bad.json")
        with open(bad_json, "w") as f:
            f.write("{not json")
        weird = os.path.join(self.tmp, "weird")
        os.makedirs(weird)
        with open(os.path.join(weird, "config.json"), "w") as f:
            json.dump({"architectures": ["GPT2LMHeadModel"], "hidden_size": 8}, f)
        out = os.path.join(self.tmp, "o.st")
        self.fails("logits", "--model", missing, "--ids", "1", "--out", out, needle="config.json",
                   subprocess=True)
        self.fails("logits", "--model", weird, "--ids", "1", "--out", out, needle="architecture")
        self.fails("logits", "--model", model, "--ids", "1,x", "--out", out)
        self.fails("logits", "--model", model, "--ids", "1,300", "--out", out, needle="vocab")
        self.fails("logits", "--model", model, "--batch-json", "[[1", "--out", out)
        self.fails("logits-cached", "--model", model, "--ids", "1,2", "--split", "3", "--out", out)
        self.fails("generate", "--model", model, "--ids", "1", "--adapter", missing)
        self.fails("train-steps", "--model", model, "--batch", bad_json, "--adapter-init", missing)
        self.fails("make-model", "--arch", "gpt2", "--out", os.path.join(self.tmp, "x"))
        self.fails("logits", "--model", model)  # argparse: --out missing
        self.fails("logits", "--model", model, "--ids", "1", "--out", os.path.join(missing, "a", "b.st"))


if __name__ == "__main__":
    unittest.main()
