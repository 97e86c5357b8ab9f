#!/usr/bin/env python3
"""Renders a chat template with jinja2 the way transformers' apply_chat_template does
(sandboxed environment, trim_blocks, lstrip_blocks, tojson, raise_exception). Tests use it
as the peer for kaizen's hand-written templates.

usage: chat_template_ref.py < {"template": str, "bos_token": str, "cases": [
           {"messages": [...], "add_generation_prompt": bool, "enable_thinking": bool?}]}
       -> JSON array of rendered strings
"""
import json
import sys

from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise ValueError(message)


def main():
    req = json.load(sys.stdin)
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = lambda x, **kw: json.dumps(x, ensure_ascii=False, **kw)
    env.globals["raise_exception"] = raise_exception
    template = env.from_string(req["template"])
    out = []
    for case in req["cases"]:
        kwargs = {"messages": case["messages"], "add_generation_prompt": case["add_generation_prompt"],
                  "bos_token": req.get("bos_token", "")}
        if "enable_thinking" in case:
            kwargs["enable_thinking"] = case["enable_thinking"]
        out.append(template.render(**kwargs))
    json.dump(out, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
