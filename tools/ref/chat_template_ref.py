#!/usr/bin/env python3
"""Renders a chat template with jinja2 the way transformers' apply_chat_template does
(sandboxed environment, trim_blocks, lstrip_blocks, the loopcontrols extension, its
`tojson` filter = json.dumps(ensure_ascii=False, indent=..), raise_exception and
strftime_now). Tests use it as the peer for kaizen's hand-written templates.

usage: chat_template_ref.py < {"template": str, "bos_token": str, "eos_token": str?, "cases": [
           {"messages": [...], "add_generation_prompt": bool, "tools": [...]?,
            "enable_thinking": bool?, ...any other template variable...}]}
       -> JSON array, one entry per case: the rendered string, or {"error": message}
          when the template raised (raise_exception or a Jinja error)

As in transformers, messages and tools are passed as given (full OpenAI dicts: tool_calls,
tool_call_id, reasoning_content...), `tools` is None when a case has none, and every other
key of a case becomes a template variable (date_string, tools_in_user_message, ...).
"""
import json
import sys
from datetime import datetime

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # transformers overrides Jinja's tojson (which escapes HTML) with plain json.dumps
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def strftime_now(fmt):
    return datetime.now().strftime(fmt)


def main():
    req = json.load(sys.stdin)
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    template = env.from_string(req["template"])
    out = []
    for case in req["cases"]:
        kwargs = {"tools": None, "documents": None, "bos_token": req.get("bos_token", ""),
                  "eos_token": req.get("eos_token", "")}
        kwargs.update(case)
        try:
            out.append(template.render(**kwargs))
        except jinja2.exceptions.TemplateError as e:
            out.append({"error": str(e)})
    json.dump(out, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
