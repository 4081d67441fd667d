#!/usr/bin/env python3
"""Regenerates more_templates_golden.json: renders of ../shared/chat/more/*.jinja
by Python jinja2 3.1 in the environment of ../shared/chat/README.md (the
reference implementation slim's chat templates must match byte for byte).

Needs `pip install jinja2==3.1.*`; not run by the build.
Usage: tests/chat/make_golden.py ../shared > tests/chat/more_templates_golden.json
"""
import copy
import glob
import json
import os
import sys
from datetime import datetime

import jinja2
import jinja2.ext
import jinja2.sandbox


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = lambda x, ensure_ascii=False, indent=None, separators=None, sort_keys=False: \
        json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime(2024, 7, 26, 0, 0, 0).strftime(fmt)
    return env


TOOLS = [
    {"type": "function", "function": {
        "name": "get_current_weather", "description": "Get the current weather in a given location",
        "parameters": {"type": "object", "properties": {
            "location": {"type": "string", "description": "The city and country, e.g. Paris, France"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Temperature unit"}},
            "required": ["location"]}}},
    {"type": "function", "function": {
        "name": "get_time", "description": "Get the current local time in a time zone",
        "parameters": {"type": "object", "properties": {
            "timezone": {"type": "string", "description": "IANA time zone name, e.g. Europe/Paris"}},
            "required": ["timezone"]}}},
]

CHAT = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Hello! Can you write \"code\"?"},
    {"role": "assistant", "content": "Sure: ```py\nprint('hi')\n```"},
    {"role": "user", "content": "Merci ✓ — 日本語 🦙 {{ not_a_var }}\n\ttabbed  "},
]


def tool_chat(string_arguments):
    args = {"location": "Paris, France", "unit": "celsius"}
    return [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What's the weather like in Paris today?"},
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call00001", "type": "function",
            "function": {"name": "get_current_weather",
                         "arguments": json.dumps(args) if string_arguments else args}}]},
        {"role": "tool", "tool_call_id": "call00001", "name": "get_current_weather",
         "content": "{\"temperature\": 22, \"unit\": \"celsius\"}"},
        {"role": "assistant", "content": "It is 22 °C in Paris."},
    ]


def contexts():
    base = {"bos_token": "<s>", "eos_token": "</s>",
            # firefunction-v2 reads these two.
            "functions": json.dumps([t["function"] for t in TOOLS]), "datetime": "2024-07-26"}
    yield "chat", dict(base, messages=CHAT, add_generation_prompt=True)
    yield "chat_no_system", dict(base, messages=CHAT[1:], add_generation_prompt=False)
    yield "tools", dict(base, messages=CHAT, add_generation_prompt=True, tools=TOOLS)
    # Templates either pass arguments through tojson (object) or concatenate them (JSON text).
    yield "tool_call_result", [dict(base, messages=tool_chat(s), add_generation_prompt=False, tools=TOOLS)
                               for s in (False, True)]


def main():
    shared = sys.argv[1]
    env = make_env()
    out = []
    for path in sorted(glob.glob(os.path.join(shared, "chat", "more", "*.jinja"))):
        source = open(path, encoding="utf-8").read()
        template = env.from_string(source)
        for name, ctx in contexts():
            candidates = ctx if isinstance(ctx, list) else [ctx]
            for c in candidates:
                try:
                    expected = template.render(**copy.deepcopy(c))
                except Exception:
                    continue
                out.append({"template": "chat/more/" + os.path.basename(path), "name": name,
                            "context": c, "expected": expected})
                break
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
