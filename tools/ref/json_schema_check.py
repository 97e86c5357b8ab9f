#!/usr/bin/env python3
"""Independent check of constrained-decoding output (tests/learning/grammar): does a generated
text parse as strict JSON and validate against its JSON schema?

Reads JSON lines on stdin, one case each:
  {"schema": S, "text_hex": H}                         text = bytes.fromhex(H) (or "text": T)
  {"tools": [{"name": N, "parameters": P}, ...], "parallel": B, "text_hex": H}
      a Qwen3/Hermes tool call: "<tool_call>\\n" JSON "\\n</tool_call>", blocks joined by "\\n"
      when parallel (else exactly one); JSON = {"name": N, "arguments": A} with N a tool's name
      and A valid for its parameters (null or {} = any object).
Prints one line per case: "ok" or "error: <reason>". Exit status 0, or 2 for malformed input.
Needs python3-jsonschema (Debian package); the validator is Draft 2020-12.
"""
import json
import sys

import jsonschema

OPEN, CLOSE = "<tool_call>\n", "\n</tool_call>"


def no_constants(name):
    raise ValueError("non-standard constant " + name)


def strict_loads(text):
    value = json.loads(text, parse_constant=no_constants)
    check_strings(value)
    return value


def check_strings(value):
    """Rejects lone surrogates from \\uD800-style escapes: they are not characters."""
    if isinstance(value, str):
        value.encode("utf-8")
    elif isinstance(value, list):
        for v in value:
            check_strings(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            check_strings(k)
            check_strings(v)


def validate(value, schema):
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(value)


def check_tools(text, tools, parallel):
    if not (text.startswith(OPEN) and text.endswith(CLOSE)):
        raise ValueError("not wrapped in <tool_call> ... </tool_call>")
    blocks = text[len(OPEN):-len(CLOSE)].split(CLOSE + "\n" + OPEN)
    if not parallel and len(blocks) != 1:
        raise ValueError("%d tool calls where one was asked for" % len(blocks))
    by_name = {t["name"]: t.get("parameters") for t in tools}
    for block in blocks:
        call = strict_loads(block)
        if not isinstance(call, dict) or list(call.keys()) != ["name", "arguments"]:
            raise ValueError("a call must be {\"name\": ..., \"arguments\": ...}")
        if call["name"] not in by_name:
            raise ValueError("unknown tool %r" % call["name"])
        prefix = '{"name": ' + json.dumps(call["name"], ensure_ascii=False) + ', "arguments": '
        if not block.startswith(prefix):
            raise ValueError("not in the chat template's layout: " + block[:60])
        params = by_name[call["name"]]
        validate(call["arguments"], params if params else {"type": "object"})


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            case = json.loads(line)
            raw = bytes.fromhex(case["text_hex"]) if "text_hex" in case else case["text"].encode()
        except (ValueError, KeyError) as e:
            print("json_schema_check.py: error: bad input line: %s" % e, file=sys.stderr)
            return 2
        try:
            text = raw.decode("utf-8")  # strict: ill-formed UTF-8 is an error
            if "tools" in case:
                check_tools(text, case["tools"], case.get("parallel", False))
            else:
                validate(strict_loads(text), case["schema"])
            print("ok")
        except (ValueError, jsonschema.ValidationError, jsonschema.SchemaError) as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            print("error: " + reason)
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
