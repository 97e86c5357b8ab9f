"""Read and write the safetensors format without the `safetensors` package.

Format (https://github.com/huggingface/safetensors, "Format" section):
  8 bytes   little-endian u64 N, the length of the header
  N bytes   JSON {name: {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
                  "__metadata__": {str: str}  (optional)}
  rest      raw little-endian row-major tensor data; offsets are relative to the
            first byte after the header.

BF16 has no numpy dtype: it is read as int16 and reinterpreted by torch as
bfloat16 (the same bits; equivalent to `int32(bits) << 16` viewed as float32).
Sharded checkpoints (model.safetensors.index.json, {"weight_map": {name: file}})
are read by load_checkpoint().
"""

import json
import mmap
import os
import struct

import numpy as np
import torch

from errors import InputError

# safetensors dtype name -> (numpy dtype read from disk, torch dtype of the result)
_DTYPES = {
    "F64": (np.float64, torch.float64),
    "F32": (np.float32, torch.float32),
    "F16": (np.float16, torch.float16),
    "BF16": (np.int16, torch.bfloat16),
    "I64": (np.int64, torch.int64),
    "I32": (np.int32, torch.int32),
    "I16": (np.int16, torch.int16),
    "I8": (np.int8, torch.int8),
    "U8": (np.uint8, torch.uint8),
    "BOOL": (np.bool_, torch.bool),
}
_TORCH_TO_NAME = {t: name for name, (_, t) in _DTYPES.items()}

# A header larger than this is not a safetensors file (the reference implementation
# refuses headers above 100 MB as well).
_MAX_HEADER_BYTES = 100 * 1024 * 1024


def _parse_header(path, raw, file_size):
    if len(raw) < 8:
        raise InputError(f"{path}: too short for a safetensors file ({len(raw)} bytes)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > _MAX_HEADER_BYTES or 8 + n > file_size:
        raise InputError(f"{path}: header length {n} does not fit the file ({file_size} bytes)")
    try:
        header = json.loads(bytes(raw[8 : 8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: header is not valid JSON: {e}") from None
    if not isinstance(header, dict):
        raise InputError(f"{path}: header is not a JSON object")
    return header, 8 + n


def read_safetensors(path):
    """Returns (tensors: dict name -> torch.Tensor (a copy), metadata: dict or None).

    Raises InputError for a missing file, a bad header, an unknown dtype or offsets
    that do not match the shape.
    """
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        if size == 0:
            raise InputError(f"{path}: empty file")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            header, data_start = _parse_header(path, mm, size)
            metadata = header.pop("__metadata__", None)
            tensors = {}
            for name, info in header.items():
                tensors[name] = _read_one(path, mm, data_start, size, name, info)
    return tensors, metadata


def _read_one(path, mm, data_start, size, name, info):
    try:
        dtype_name = info["dtype"]
        shape = [int(d) for d in info["shape"]]
        begin, end = (int(o) for o in info["data_offsets"])
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{path}: tensor '{name}' has a malformed header entry: {info}") from None
    if dtype_name not in _DTYPES:
        raise InputError(f"{path}: tensor '{name}' has unsupported dtype {dtype_name}")
    np_dtype, torch_dtype = _DTYPES[dtype_name]
    count = int(np.prod(shape)) if shape else 1
    expected = count * np.dtype(np_dtype).itemsize
    if begin < 0 or end < begin or end - begin != expected or data_start + end > size:
        raise InputError(
            f"{path}: tensor '{name}' offsets [{begin}, {end}] do not match "
            f"dtype {dtype_name} shape {shape} ({expected} bytes) in a {size}-byte file")
    array = np.frombuffer(mm, dtype=np_dtype, count=count, offset=data_start + begin).copy()
    if not np.little_endian:
        array = array.byteswap()
    tensor = torch.from_numpy(array)
    if torch_dtype == torch.bfloat16:
        tensor = tensor.view(torch.bfloat16)
    return tensor.reshape(shape)


def write_safetensors(path, tensors, metadata=None):
    """Writes dict name -> torch.Tensor (any device/layout; made contiguous CPU).

    Tensors are laid out in sorted name order, as the safetensors library does.
    metadata, if given, must map str -> str.
    """
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype not in _TORCH_TO_NAME:
            raise InputError(f"cannot write tensor '{name}' of dtype {t.dtype}")
        dtype_name = _TORCH_TO_NAME[t.dtype]
        if t.dtype == torch.bfloat16:
            blob = t.view(torch.int16).numpy().astype("<i2").tobytes()
        else:
            blob = t.numpy().astype(np.dtype(_DTYPES[dtype_name][0]).newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype_name, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if metadata is not None:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise InputError("safetensors __metadata__ must map strings to strings")
        header["__metadata__"] = dict(metadata)
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * ((8 - len(raw) % 8) % 8)  # keep data 8-byte aligned, as the library does
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def load_checkpoint(model_dir):
    """Reads all weights of an HF model directory: model.safetensors, or the shards
    named by model.safetensors.index.json. Returns dict name -> tensor."""
    single = os.path.join(model_dir, "model.safetensors")
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.isfile(single):
        return read_safetensors(single)[0]
    if not os.path.isfile(index):
        raise InputError(f"{model_dir}: neither model.safetensors nor model.safetensors.index.json")
    try:
        with open(index, encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise InputError(f"{index}: not a valid index ({e})") from None
    tensors = {}
    for shard in sorted(set(weight_map.values())):
        part, _ = read_safetensors(os.path.join(model_dir, shard))
        for name, t in part.items():
            if weight_map.get(name) != shard:
                raise InputError(f"{index}: tensor '{name}' found in {shard} but not mapped to it")
            tensors[name] = t
    missing = sorted(set(weight_map) - set(tensors))
    if missing:
        raise InputError(f"{index}: tensors listed but absent from their shards: {missing[:5]}")
    return tensors
