import json
import os
import struct
import unittest

import torch

from errors import InputError
from safetensors_io import load_checkpoint, read_safetensors, write_safetensors
from tests.util import TempDirTest


class SafetensorsTest(TempDirTest, unittest.TestCase):
    def test_round_trip_every_dtype(self):
        g = torch.Generator().manual_seed(0)
        tensors = {
            "f32": torch.randn(3, 5, generator=g),
            "f64": torch.randn(2, generator=g, dtype=torch.float64),
            "f16": torch.randn(4, 2, generator=g).half(),
            "bf16": torch.randn(7, generator=g).bfloat16(),
            "i64": torch.tensor([[1, -2], [2**40, 0]]),
            "i32": torch.tensor([3, -4], dtype=torch.int32),
            "u8": torch.tensor([0, 255], dtype=torch.uint8),
            "bool": torch.tensor([True, False]),
            "scalar": torch.tensor(2.5),
            "empty": torch.zeros(0, 3),
        }
        path = os.path.join(self.tmp, "a.safetensors")
        write_safetensors(path, tensors, metadata={"format": "pt"})
        back, meta = read_safetensors(path)
        self.assertEqual(meta, {"format": "pt"})
        self.assertEqual(sorted(back), sorted(tensors))
        for name, t in tensors.items():
            self.assertEqual(back[name].dtype, t.dtype, name)
            self.assertEqual(tuple(back[name].shape), tuple(t.shape), name)
            self.assertTrue(torch.equal(back[name], t), name)

    def test_reads_hand_built_file(self):
        # Written byte by byte from the format spec, not by our writer.
        header = {"w": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]},
                  "i": {"dtype": "I32", "shape": [1], "data_offsets": [4, 8]},
                  "__metadata__": {"k": "v"}}
        raw = json.dumps(header).encode()
        data = struct.pack("<HH", 0x3F80, 0xC040) + struct.pack("<i", -7)  # bf16 1.0, -3.0
        path = os.path.join(self.tmp, "h.safetensors")
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(raw)) + raw + data)
        t, meta = read_safetensors(path)
        self.assertEqual(t["w"].float().tolist(), [1.0, -3.0])
        self.assertEqual(t["i"].tolist(), [-7])
        self.assertEqual(meta, {"k": "v"})

    def test_writer_layout(self):
        path = os.path.join(self.tmp, "l.safetensors")
        write_safetensors(path, {"b": torch.tensor([1.0]), "a": torch.tensor([2, 3], dtype=torch.int64)})
        with open(path, "rb") as f:
            raw = f.read()
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8 : 8 + n])
        self.assertEqual(header["a"], {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]})
        self.assertEqual(header["b"], {"dtype": "F32", "shape": [1], "data_offsets": [16, 20]})
        self.assertEqual(struct.unpack("<qqf", raw[8 + n :]), (2, 3, 1.0))

    def test_sharded_checkpoint(self):
        write_safetensors(os.path.join(self.tmp, "s1.safetensors"), {"x": torch.ones(2)})
        write_safetensors(os.path.join(self.tmp, "s2.safetensors"), {"y": torch.zeros(3)})
        with open(os.path.join(self.tmp, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": {"x": "s1.safetensors", "y": "s2.safetensors"}}, f)
        t = load_checkpoint(self.tmp)
        self.assertEqual(sorted(t), ["x", "y"])
        self.assertEqual(t["y"].shape, (3,))

    def test_bad_files_raise_input_error(self):
        cases = {
            "short": b"\x01\x02",
            "huge_header": struct.pack("<Q", 1 << 40) + b"{}",
            "not_json": struct.pack("<Q", 3) + b"abc",
            "bad_offsets": (lambda h: struct.pack("<Q", len(h)) + h + b"\0" * 4)(
                json.dumps({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}).encode()),
            "bad_dtype": (lambda h: struct.pack("<Q", len(h)) + h + b"\0" * 4)(
                json.dumps({"x": {"dtype": "Q7", "shape": [1], "data_offsets": [0, 4]}}).encode()),
        }
        for name, blob in cases.items():
            path = os.path.join(self.tmp, name)
            with open(path, "wb") as f:
                f.write(blob)
            with self.assertRaises(InputError, msg=name):
                read_safetensors(path)
        with self.assertRaises(InputError):
            read_safetensors(os.path.join(self.tmp, "missing"))
        with self.assertRaises(InputError):
            load_checkpoint(self.tmp)


if __name__ == "__main__":
    unittest.main()
