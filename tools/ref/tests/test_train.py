import json
import os
import unittest

import torch
import torch.nn.functional as F

from errors import InputError
from lora import LoraConfig, inject, lora_parameters
from train import causal_lm_loss, load_batch, train_steps
from tests.util import TempDirTest, small_model


def lora_model(dtype=torch.float32, seed=0):
    model = small_model(seed=seed, dtype=dtype)
    inject(model, LoraConfig(r=2, lora_alpha=4), seed=5, random_b_std=0.05)
    return model


BATCH = {"input_ids": [[3, 14, 15, 92, 65, 35], [89, 79, 32]],
         "labels": [[-100, -100, 15, 92, 65, 35], [-100, 79, 32]]}


class TrainTest(TempDirTest, unittest.TestCase):
    def batch(self, content=BATCH, vocab=300):
        path = os.path.join(self.tmp, "batch.json")
        with open(path, "w") as f:
            json.dump(content, f)
        return load_batch(path, vocab)

    def test_loss_is_mean_over_label_tokens(self):
        ids, mask, labels = self.batch()
        self.assertEqual(labels.tolist(), [[-100, -100, 15, 92, 65, 35], [-100, 79, 32, -100, -100, -100]])
        model = small_model(seed=1)
        logits = model(ids, attention_mask=mask)
        terms = []
        for b, row in enumerate(BATCH["labels"]):
            for t in range(len(row) - 1):
                if row[t + 1] != -100:
                    terms.append(-F.log_softmax(logits[b, t], -1)[row[t + 1]].item())
        self.assertEqual(len(terms), 6)
        self.assertAlmostEqual(causal_lm_loss(logits, labels).item(), sum(terms) / len(terms), places=5)

    def test_gradient_matches_finite_difference(self):
        ids, mask, labels = self.batch()
        model = lora_model(torch.float64)
        _, grads = train_steps(model, ids, mask, labels, steps=1, lr=0.0)
        params = dict(lora_parameters(model))
        for key, index in [("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", (1, 3)),
                           ("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight", (5, 0))]:
            p = params[key]
            eps = 1e-6
            with torch.no_grad():
                orig = p[index].item()
                p[index] = orig + eps
                up = causal_lm_loss(model(ids, attention_mask=mask), labels).item()
                p[index] = orig - eps
                down = causal_lm_loss(model(ids, attention_mask=mask), labels).item()
                p[index] = orig
            fd = (up - down) / (2 * eps)
            self.assertGreater(abs(fd), 1e-6, key)
            self.assertAlmostEqual(grads[key][index].item(), fd, delta=1e-7 + 1e-5 * abs(fd))

    def test_base_frozen_and_adamw_first_step(self):
        ids, mask, labels = self.batch()
        model = lora_model(torch.float64)
        before = {k: p.detach().clone() for k, p in lora_parameters(model)}
        base_before = model.model.layers[0].self_attn.q_proj.base_layer.weight.clone()
        lr, wd = 1e-2, 0.1
        _, grads = train_steps(model, ids, mask, labels, steps=1, lr=lr, weight_decay=wd)
        for key, p in lora_parameters(model):
            g, p0 = grads[key], before[key]
            # AdamW step 1: m_hat = g, v_hat = g^2 -> p0*(1 - lr*wd) - lr * g / (|g| + eps)
            want = p0 * (1 - lr * wd) - lr * g / (g.abs() + 1e-8)
            self.assertLess((p.detach() - want).abs().max().item(), 1e-12, key)
        self.assertTrue(torch.equal(model.model.layers[0].self_attn.q_proj.base_layer.weight, base_before))
        self.assertFalse(any(p.requires_grad for n, p in model.named_parameters() if "lora_" not in n))

    def test_loss_decreases_and_clip_changes_steps(self):
        ids, mask, labels = self.batch()
        losses, _ = train_steps(lora_model(), ids, mask, labels, steps=8, lr=1e-2)
        self.assertLess(losses[-1], losses[0] - 0.1)
        clipped, _ = train_steps(lora_model(), ids, mask, labels, steps=3, lr=1e-2, clip=1e-4)
        self.assertEqual(clipped[0], losses[0])
        self.assertNotEqual(clipped[2], losses[2])

    def test_bad_batches(self):
        for content in [{"input_ids": []}, {"input_ids": [[1, 2]], "labels": [[1]]},
                        {"input_ids": [[1, 999]]}, {"input_ids": [[1, 2]], "labels": [[1, -100]]},
                        [1, 2]]:
            with self.assertRaises(InputError, msg=content):
                self.batch(content)


if __name__ == "__main__":
    unittest.main()
