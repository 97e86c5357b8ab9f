#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets into tests/fuzz/corpus/<target>/.

Seeds are small valid inputs (and a few near misses) that put the fuzzer inside each
format at once; libFuzzer mutates from there. Rerun after changing a format; crash
inputs found by fuzzing are added to the same folders by hand (crash-<sha1>), never by
this script. Standard library only.
"""
import json
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, bytes)] -> file bytes, laid out in list order."""
    header, offset, blobs = {}, 0, []
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, blob in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def seeds_safetensors():
    f32 = struct.pack("<4f", 1.0, -2.0, 0.5, 3.25)
    write("safetensors", "two_tensors", safetensors(
        [("model.embed_tokens.weight", "F32", [2, 2], f32),
         ("model.norm.weight", "BF16", [2], b"\x80\x3f\x00\x40")],
        {"format": "pt"}))
    write("safetensors", "all_dtypes", safetensors(
        [(f"t.{d}", d, [1], b"\x01" * n) for d, n in
         [("F64", 8), ("I64", 8), ("F32", 4), ("I32", 4), ("F16", 2), ("I16", 2),
          ("I8", 1), ("U8", 1), ("BOOL", 1), ("F8_E4M3", 1), ("U16", 2)]]))
    write("safetensors", "empty_tensor", safetensors([("e", "F32", [0, 3], b"")]))
    write("safetensors", "no_tensors", safetensors([], {"k": "v"}))
    write("safetensors", "overlap",
          struct.pack("<Q", 96) + json.dumps(
              {"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
               "b": {"dtype": "U8", "shape": [2], "data_offsets": [1, 3]}}).encode().ljust(96) + b"xyz")
    write("safetensors", "index.json", json.dumps(
        {"metadata": {"total_size": 24},
         "weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors",
                        "lm_head.weight": "model-00002-of-00002.safetensors"}}))


def seeds_model_config():
    qwen3_06b = {
        "architectures": ["Qwen3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
        "hidden_size": 1024, "initializer_range": 0.02, "intermediate_size": 3072,
        "max_position_embeddings": 40960, "max_window_layers": 28, "model_type": "qwen3",
        "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8,
        "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": 1000000,
        "sliding_window": None, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
        "transformers_version": "4.51.0", "use_cache": True, "use_sliding_window": False,
        "vocab_size": 151936}
    write("model_config", "qwen3_0.6b.json", json.dumps(qwen3_06b, indent=2))
    llama = {
        "architectures": ["LlamaForCausalLM"], "attention_bias": False, "bos_token_id": 128000,
        "eos_token_id": [128001, 128008, 128009], "hidden_size": 2048,
        "intermediate_size": 8192, "max_position_embeddings": 131072, "mlp_bias": False,
        "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 16,
        "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
        "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "rope_theta": 500000.0, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
        "vocab_size": 128256}
    write("model_config", "llama3.2_1b.json", json.dumps(llama, indent=2))
    qwen2 = dict(qwen3_06b, architectures=["Qwen2ForCausalLM"], model_type="qwen2",
                 attention_bias=True, hidden_size=896, num_attention_heads=14,
                 num_key_value_heads=2, intermediate_size=4864, num_hidden_layers=24)
    del qwen2["head_dim"]
    write("model_config", "qwen2.5_0.5b.json", json.dumps(qwen2))
    write("model_config", "bad_heads.json", json.dumps(dict(qwen3_06b, num_key_value_heads=3)))


def seeds_tokenizer():
    texts = {
        "ascii": "Hello, Sabitech! What is Chorei? It's the morning meeting.",
        "cjk": "你好，世界。改善（かいぜん）は毎日の習慣です。",
        "emoji": "🙂👍🏽 family: 👨‍👩‍👧 flags 🇯🇵",
        "specials": "<|im_start|>user\nhi<|im_end|>\n<think>\n\n</think>\n<tool_call>",
        "numbers_spaces": "  12345 678\t\t\n\n\n   x  y   \r\n 3.14159e-10",
        "combining": "Cafe\u0301 n\u0303 A\u030a \u1100\u1161\u11a8",
    }
    for name, t in texts.items():
        write("tokenizer", name, t)
    write("tokenizer", "invalid_utf8", b"ok \xff\xfe \xc3( \xe2\x82 \xf0\x9f\x98 \xed\xa0\x80 end")
    tiny = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": 5, "content": "<|im_end|>", "single_word": False,
                          "lstrip": False, "rstrip": False, "normalized": False, "special": True}],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "\\s+|\\w+|[^\\s\\w]+"},
             "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
             "use_regex": False}]},
        "post_processor": None, "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": "", "end_of_word_suffix": "",
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {"H": 0, "e": 1, "l": 2, "o": 3, "He": 4},
                  "merges": [["H", "e"]]}}
    write("tokenizer", "json_tiny", "J" + json.dumps(tiny))


def seeds_chat_template():
    # Byte layout read by fuzz_chat_template.cc: tools, then messages.
    def text(s):
        b = s.encode()
        return bytes([len(b)]) + b
    tools = bytes([1]) + text("get_order") + text("Order status") + text("id")
    msgs = (bytes([4])
            + bytes([0]) + text("You are Kaizen.") + b"\x00"
            + bytes([1]) + text("Where is order 42?") + b"\x00"
            + bytes([2]) + text("") + b"\x01" + text("get_order") + text('{"id": "42"}')
            + bytes([3]) + text('{"status": "shipped"}') + b"\x00")
    write("chat_template", "tool_round_trip", tools + msgs + bytes([2]) + text("It shipped.") + b"\x08" + text("thinking"))
    write("chat_template", "plain", bytes([0, 2]) + bytes([1]) + text("hi") + b"\x00" + bytes([2]) + text("<think>\nx\n</think>\n\nhello") + b"\x00")


def seeds_chat_line():
    here = os.path.dirname(os.path.abspath(__file__))
    examples = os.path.join(here, "..", "..", "examples")
    for name in ("sabitech_facts.jsonl", "sabitech_tool_calls.jsonl"):
        with open(os.path.join(examples, name), encoding="utf-8") as f:
            lines = [l.rstrip("\n") for l in f if l.strip()]
        for i, line in enumerate(lines[:3]):
            write("chat_line", f"{name.split('.')[0]}_{i}", line)
    write("chat_line", "paraphrases", json.dumps(
        {"messages": [{"role": "system", "content": "Be brief."},
                      {"role": "user", "content": "What is Chorei?"},
                      {"role": "assistant", "content": "Sabitech's morning meeting."}],
         "paraphrases": ["Tell me about Chorei."]}))
    write("chat_line", "tool_history", json.dumps(
        {"messages": [{"role": "user", "content": "Order 7?"},
                      {"role": "assistant", "content": None, "tool_calls": [
                          {"id": "c1", "type": "function",
                           "function": {"name": "get_order", "arguments": "{\"id\": 7}"}}]},
                      {"role": "tool", "tool_call_id": "c1", "content": "shipped"},
                      {"role": "assistant", "content": "It shipped."}],
         "tools": [{"type": "function", "function": {"name": "get_order", "parameters": {
             "type": "object", "properties": {"id": {"type": "integer"}}}}}]}))


def seeds_records():
    kinds = ["conversation", "message", "feedback", "example", "adapter", "run", "replay"]
    recs = {
        "conversation": {"id": 3, "created_ms": 1700000000000, "user": "ana", "title": "t",
                         "model": "kaizen", "tools_json": "[{\"type\":\"function\"}]"},
        "message": {"id": 9, "conversation_id": 3, "role": "assistant", "content": "hi",
                    "created_ms": 1, "prompt_tokens": 5, "completion_tokens": 2,
                    "adapter_version": 1, "latency_ms": 12,
                    "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{}"}}]},
        "feedback": {"id": 1, "message_id": 9, "rating": -1, "correction": "better",
                     "author": "bo", "created_ms": 2, "review": "pending", "example_id": 0},
        "example": {"id": 4, "messages": [{"role": "user", "content": "q"},
                                          {"role": "assistant", "content": "a"}],
                    "source": "knowledge", "provenance": "f.jsonl:1", "state": "approved",
                    "first_adapter_version": 0, "feedback_id": 0, "created_ms": 1,
                    "updated_ms": 2, "reviewer": "", "author": "", "paraphrases": ["q?"],
                    "state_seq": 7},
        "adapter": {"version": 2, "parent": 1, "path": "adapters/v2", "metrics": {"loss": 0.5},
                    "state": "active", "pinned": False, "created_ms": 3, "run_id": 5},
        "run": {"id": 5, "trigger": "manual", "example_ids": [4], "replay_ids": [],
                "config": {}, "loss_curve": [2.0, 1.0], "metrics": {}, "verdict": "accepted",
                "gate": {"learn": 1.0}},
        "replay": {"example_id": 4, "source": "feedback"},
    }
    for i, k in enumerate(kinds):
        write("records", k, bytes([i]) + json.dumps(recs[k]).encode())


def seeds_config():
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "systemd", "kaizend.conf"), encoding="utf-8") as f:
        write("config", "kaizend.conf", f.read())
    write("config", "small.conf",
          "model = /var/lib/kaizen/model\nlisten = [::1]:8088\n\n[train]\nlora_rank = 8\n"
          "min_new_examples = 50\n[gate]\nmax_canary_kl = 0.5\n")


def seeds_peft():
    """adapter_config.json, NUL, adapter_model.safetensors — for fuzz_peft's tiny model
    (hidden 8, intermediate 16, 2 heads of 4, 1 KV head, 2 layers)."""
    dims = {"q_proj": (8, 8), "k_proj": (8, 4), "v_proj": (8, 4), "o_proj": (8, 8),
            "gate_proj": (8, 16), "up_proj": (8, 16), "down_proj": (16, 8)}
    attn = {"q_proj", "k_proj", "v_proj", "o_proj"}

    def adapter(r, modules, layers=(0, 1), dtype="F32"):
        size = {"F32": 4, "F16": 2, "BF16": 2}[dtype]
        tensors = []
        for layer in layers:
            for m in modules:
                i, o = dims[m]
                part = "self_attn" if m in attn else "mlp"
                key = f"base_model.model.model.layers.{layer}.{part}.{m}"
                tensors.append((key + ".lora_A.weight", dtype, [r, i], b"\x00" * (r * i * size)))
                tensors.append((key + ".lora_B.weight", dtype, [o, r], b"\x00" * (o * r * size)))
        return safetensors(tensors, {"format": "pt"})

    def config(**over):
        c = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 2, "lora_alpha": 4,
             "target_modules": ["q_proj", "v_proj"], "bias": "none", "use_rslora": False,
             "base_model_name_or_path": "Qwen/Qwen3-0.6B"}
        c.update(over)
        return json.dumps(c).encode()

    write("peft", "qv", config() + b"\0" + adapter(2, ["q_proj", "v_proj"]))
    write("peft", "all_linear_bf16", config(target_modules="all-linear", r=1) + b"\0" +
          adapter(1, list(dims), dtype="BF16"))
    write("peft", "regex", config(target_modules=r".*\.(q_proj|down_proj)") + b"\0" +
          adapter(2, ["q_proj", "down_proj"], layers=(1,)))
    write("peft", "rank_mismatch", config(r=4) + b"\0" + adapter(2, ["q_proj", "v_proj"]))
    write("peft", "unselected", config(target_modules=["q_proj"]) + b"\0" + adapter(2, ["q_proj", "v_proj"]))
    write("peft", "dora", config(use_dora=True))


if __name__ == "__main__":
    seeds_safetensors()
    seeds_model_config()
    seeds_tokenizer()
    seeds_chat_template()
    seeds_chat_line()
    seeds_records()
    seeds_config()
    seeds_peft()
