#!/usr/bin/python3
"""Command line of the kaizen reference implementation (see README.md).

Every subcommand prints one JSON object on stdout and writes tensors as safetensors.
Bad input (missing file, bad JSON, unknown arch, bad flag) prints "ref.py: error: ..."
on stderr and exits with code 2.
"""

import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from errors import InputError  # noqa: E402

DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}


def parse_ids(text, flag="--ids"):
    try:
        ids = [int(x) for x in text.split(",") if x.strip() != ""]
    except ValueError:
        raise InputError(f"{flag}: expected comma-separated integers, got {text!r}") from None
    if not ids:
        raise InputError(f"{flag}: no token ids")
    return ids


def load(args):
    from hf_model import load_model
    from lora import load_adapter

    torch.set_num_threads(args.threads)
    model = load_model(args.model, DTYPES[args.dtype])
    if getattr(args, "adapter", None):
        load_adapter(model, args.adapter)
    return model


def emit(obj):
    json.dump(obj, sys.stdout)
    sys.stdout.write("\n")


def cmd_logits(args):
    from infer import check_ids, logits_batch, logits_single
    from safetensors_io import write_safetensors

    if (args.ids is None) == (args.batch_json is None):
        raise InputError("give exactly one of --ids and --batch-json")
    if args.hidden and args.ids is None:
        raise InputError("--hidden works with --ids only")
    model = load(args)
    vocab = model.config.vocab_size
    if args.ids is not None:
        ids = parse_ids(args.ids)
        check_ids(ids, vocab)
        logits, hidden = logits_single(model, ids, return_hidden=True)
        tensors = {"logits": logits}
        if args.hidden:
            tensors.update({f"hidden.{i}": h for i, h in enumerate(hidden)})
    else:
        try:
            rows = json.loads(args.batch_json)
        except json.JSONDecodeError as e:
            raise InputError(f"--batch-json: invalid JSON: {e}") from None
        if (not isinstance(rows, list) or not rows or not all(isinstance(r, list) for r in rows)
                or not all(isinstance(x, int) for r in rows for x in r)):
            raise InputError("--batch-json: expected a list of lists of token ids")
        for r in rows:
            check_ids(r, vocab, "--batch-json")
        logits = logits_batch(model, rows, args.padding)
        tensors = {"logits": logits, "lengths": torch.tensor([len(r) for r in rows])}
    write_safetensors(args.out, tensors)
    emit({"out": args.out, "shape": list(logits.shape)})


def cmd_logits_cached(args):
    from infer import check_ids, logits_cached
    from safetensors_io import write_safetensors

    model = load(args)
    ids = parse_ids(args.ids)
    check_ids(ids, model.config.vocab_size)
    logits = logits_cached(model, ids, args.split)
    write_safetensors(args.out, {"logits": logits})
    emit({"out": args.out, "shape": list(logits.shape), "split": args.split})


def cmd_generate(args):
    from infer import check_ids, greedy_generate

    model = load(args)
    ids = parse_ids(args.ids)
    check_ids(ids, model.config.vocab_size)
    eos = parse_ids(args.eos, "--eos") if args.eos else []
    emit({"ids": greedy_generate(model, ids, args.max_tokens, eos)})


def cmd_train_steps(args):
    from lora import lora_parameters, read_adapter_config, save_adapter
    from safetensors_io import write_safetensors
    from train import load_batch, train_steps

    args.adapter = args.adapter_init
    cfg = read_adapter_config(args.adapter_init)  # fail on a bad adapter before loading the model
    model = load(args)
    ids, mask, labels = load_batch(args.batch, model.config.vocab_size)
    losses, grads0 = train_steps(model, ids, mask, labels, args.steps, args.lr,
                                 weight_decay=args.weight_decay, clip=args.clip)
    if args.out_grads:
        write_safetensors(args.out_grads, {k: g.float() for k, g in grads0.items()})
    if args.out_adapter:
        save_adapter(model, cfg, args.out_adapter)
    norm0 = torch.sqrt(sum((g.double() ** 2).sum() for g in grads0.values())).item()
    emit({"losses": losses, "grad_norm0": norm0, "tokens": int(mask.sum()),
          "label_tokens": int((labels[:, 1:] != -100).sum()),
          "params": sum(p.numel() for _, p in lora_parameters(model))})


def cmd_make_adapter(args):
    from lora import LoraConfig, inject, save_adapter

    if args.rank <= 0:
        raise InputError(f"--rank must be positive, got {args.rank}")
    model = load(args)
    targets = [t for t in args.targets.split(",") if t]
    cfg = LoraConfig(r=args.rank, lora_alpha=args.alpha, target_modules=targets,
                     use_rslora=args.rslora, base_model_name_or_path=args.model)
    count = inject(model, cfg, seed=args.seed, random_b_std=args.b_std if args.random_b else 0.0)
    save_adapter(model, cfg, args.out)
    emit({"out": args.out, "modules": count})


def cmd_make_model(args):
    from tiny_model import make_model

    rope_scaling = None
    if args.rope_scaling_json:
        try:
            rope_scaling = json.loads(args.rope_scaling_json)
        except json.JSONDecodeError as e:
            raise InputError(f"--rope-scaling-json: invalid JSON: {e}") from None
    raw = make_model(args.out, args.arch, args.seed, std=args.std, hidden=args.hidden,
                     layers=args.layers, heads=args.heads, kv_heads=args.kv_heads,
                     head_dim=args.head_dim, intermediate=args.intermediate, vocab=args.vocab,
                     tied=args.tied, rope_theta=args.rope_theta, rope_scaling=rope_scaling)
    if args.tokenizer_dir:
        for name in ("tokenizer.json", "tokenizer_config.json"):
            src = os.path.join(args.tokenizer_dir, name)
            if not os.path.isfile(src):
                raise InputError(f"{args.tokenizer_dir}: no {name}")
            shutil.copy(src, os.path.join(args.out, name))
    emit({"out": args.out, "config": raw})


def cmd_bench(args):
    from bench import bench_inference

    model = load(args)
    result = bench_inference(model, args.prefill, args.decode, args.seed, args.matvec)
    result.update({"threads": torch.get_num_threads(), "dtype": args.dtype, "torch": torch.__version__,
                   "matvec": args.matvec})
    emit(result)


def cmd_bench_train(args):
    from bench import bench_train

    args.adapter = None
    model = load(args)
    targets = [t for t in args.targets.split(",") if t]
    result = bench_train(model, args.batch_tokens, args.steps, args.rank, args.alpha or 2 * args.rank,
                         targets, args.seq_len, args.seed)
    result.update({"threads": torch.get_num_threads(), "dtype": args.dtype, "torch": torch.__version__})
    emit(result)


def build_parser():
    p = argparse.ArgumentParser(prog="ref.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    def model_cmd(name, fn, adapter=True, threads=1):
        s = sub.add_parser(name)
        s.add_argument("--model", required=True, help="HF model directory")
        s.add_argument("--threads", type=int, default=threads, help="torch.set_num_threads")
        s.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
        if adapter:
            s.add_argument("--adapter", help="PEFT LoRA adapter directory")
        s.set_defaults(fn=fn)
        return s

    s = model_cmd("logits", cmd_logits)
    s.add_argument("--ids", help="comma-separated token ids")
    s.add_argument("--batch-json", help="JSON list of id lists (ragged)")
    s.add_argument("--padding", choices=["left", "right"], default="right")
    s.add_argument("--hidden", action="store_true", help="also write hidden.<i> (single --ids)")
    s.add_argument("--out", required=True)

    s = model_cmd("logits-cached", cmd_logits_cached)
    s.add_argument("--ids", required=True)
    s.add_argument("--split", type=int, required=True, help="prefix length run in one forward")
    s.add_argument("--out", required=True)

    s = model_cmd("generate", cmd_generate)
    s.add_argument("--ids", required=True)
    s.add_argument("--max-tokens", type=int, default=32)
    s.add_argument("--eos", help="comma-separated stop token ids")

    s = model_cmd("train-steps", cmd_train_steps, adapter=False)
    s.add_argument("--batch", required=True, help='JSON {"input_ids": [[..]], "labels": [[..]]}')
    s.add_argument("--adapter-init", required=True, help="PEFT adapter to start from")
    s.add_argument("--steps", type=int, default=10)
    s.add_argument("--lr", type=float, default=1e-3)
    s.add_argument("--weight-decay", type=float, default=0.0)
    s.add_argument("--clip", type=float, default=None, help="max global grad norm")
    s.add_argument("--out-grads", help="safetensors of the step-0 gradients")
    s.add_argument("--out-adapter", help="directory for the trained adapter")

    s = model_cmd("make-adapter", cmd_make_adapter, adapter=False)
    s.add_argument("--out", required=True)
    s.add_argument("--rank", type=int, default=4)
    s.add_argument("--alpha", type=float, default=8)
    s.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--random-b", action="store_true", help="B ~ N(0, --b-std) instead of zeros")
    s.add_argument("--b-std", type=float, default=0.02)
    s.add_argument("--rslora", action="store_true")

    s = sub.add_parser("make-model")
    s.add_argument("--arch", required=True, help="qwen3 | qwen2 | llama")
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--hidden", type=int, default=64)
    s.add_argument("--layers", type=int, default=2)
    s.add_argument("--heads", type=int, default=4)
    s.add_argument("--kv-heads", type=int, default=2)
    s.add_argument("--head-dim", type=int, default=16)
    s.add_argument("--intermediate", type=int, default=128)
    s.add_argument("--vocab", type=int, default=151936)
    s.add_argument("--tied", action="store_true")
    s.add_argument("--std", type=float, default=0.02, help="stddev of random weights")
    s.add_argument("--rope-theta", type=float, default=1e6)
    s.add_argument("--rope-scaling-json", help='e.g. {"rope_type":"linear","factor":2}')
    s.add_argument("--tokenizer-dir", help="copy tokenizer.json + tokenizer_config.json from here")
    s.set_defaults(fn=cmd_make_model)

    s = model_cmd("bench", cmd_bench, threads=2)
    s.add_argument("--prefill", type=int, default=512)
    s.add_argument("--decode", type=int, default=64)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--matvec", action="store_true", help="single-row linear as torch.mv (faster)")

    s = model_cmd("bench-train", cmd_bench_train, adapter=False, threads=2)
    s.add_argument("--batch-tokens", type=int, default=512)
    s.add_argument("--seq-len", type=int, default=0, help="row length (default: batch-tokens)")
    s.add_argument("--steps", type=int, default=3)
    s.add_argument("--rank", type=int, default=16)
    s.add_argument("--alpha", type=float, default=0, help="default 2*rank")
    s.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")
    s.add_argument("--seed", type=int, default=0)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "threads", 1) < 1:
            raise InputError("--threads must be at least 1")
        args.fn(args)
    except InputError as e:
        print(f"ref.py: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"ref.py: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
