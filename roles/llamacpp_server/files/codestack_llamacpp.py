"""llama.cpp's OpenAI-compatible server (llama-cpp-python) with a chat format for coding agents.

Coding agents (KiloCode, the Kilo CLI, Continue, ...) send what the OpenAI API allows: message
content as a list of parts (``[{"type": "text", "text": ...}]``), ``tools`` with every request,
assistant turns that hold only ``tool_calls`` (content ``null``) and ``tool`` results.
llama-cpp-python hands the messages to the GGUF's Jinja chat template unchanged, and most small
models' templates concatenate ``message['content']`` as a string: the request fails with
``TypeError: can only concatenate str (not "list") to str`` and the agent gets no answer.

The server's request schema refuses most of it before a template is reached (a system message's
content must be a string, an assistant message's content cannot be ``null``: HTTP 500).

This launcher puts a small ASGI layer in front of the server that turns every message's content
into a string (text parts joined, other parts named in brackets) before the request is validated,
and registers the chat format ``codestack``, which wraps the model's own template (or the named
llama.cpp format given with ``--base_chat_format``):

* when the template cannot render tools (it never mentions ``tools``), the tool definitions are
  left out and earlier tool calls and results are written into the conversation as text, so a
  model without tool calling still answers in words; a template that knows tools gets them.

Then it runs ``llama_cpp.server`` with the remaining arguments::

    python codestack_llamacpp.py --config_file config.json [--base_chat_format chatml]
"""

import argparse
import json
import sys

CHAT_FORMAT = "codestack"


def content_text(content):
    """The text of a message's content: a string, None, or a list of OpenAI content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict):
                if part.get("type", "text") == "text":
                    texts.append(str(part.get("text", "")))
                else:
                    texts.append("[%s]" % part.get("type", "part"))
        return "\n".join(texts)
    return str(content)


def _call_text(call):
    function = call.get("function") or {}
    return "[called tool %s with %s]" % (function.get("name", "?"), function.get("arguments", "{}"))


def normalize_messages(messages, keep_tools):
    """Messages a text-only chat template can render.

    keep_tools: the template renders tools itself, so tool calls and tool results keep their
    structure; otherwise they become text in assistant and user turns.
    """
    out = []
    for message in messages:
        message = dict(message)
        message["content"] = content_text(message.get("content"))
        if not keep_tools:
            calls = message.pop("tool_calls", None) or []
            legacy = message.pop("function_call", None)
            if legacy:
                calls.append({"function": legacy})
            if calls:
                message["content"] = "\n".join([message["content"]] * bool(message["content"])
                                               + [_call_text(c) for c in calls])
            if message.get("role") in ("tool", "function"):
                name = message.pop("name", None) or message.get("tool_call_id", "")
                message.pop("tool_call_id", None)
                message["role"] = "user"
                message["content"] = "[result of tool %s]\n%s" % (name, message["content"])
        out.append(message)
    return out


def template_knows_tools(template):
    return bool(template) and "tools" in template


def normalize_request(body):
    """A chat request whose messages the server's schema accepts: every content a string."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return body
    body = dict(body)
    body["messages"] = [dict(m, content=content_text(m.get("content"))) if isinstance(m, dict) else m
                        for m in messages]
    return body


class ContentPartsMiddleware:
    """ASGI: rewrite the JSON body of POST /v1/chat/completions with normalize_request."""

    path = "/v1/chat/completions"

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") != self.path:
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, receive, send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        try:
            decoded = json.loads(body)
        except ValueError:
            decoded = None  # the server answers the malformed request itself
        if isinstance(decoded, dict):
            body = json.dumps(normalize_request(decoded)).encode()
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-length"]
        scope = dict(scope, headers=headers + [(b"content-length", str(len(body)).encode())])
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def make_handler(base_format=None):
    """The chat completion handler registered as CHAT_FORMAT."""
    from llama_cpp import llama_chat_format

    def handler(*, llama, messages, tools=None, tool_choice=None, functions=None,
                function_call=None, **kwargs):
        if base_format:
            inner = llama_chat_format.get_chat_completion_handler(base_format)
            keep_tools = True
        else:
            template = llama.metadata.get("tokenizer.chat_template", "")
            # Built by Llama() from the GGUF's template (llama-cpp-python 0.3.x keeps it here).
            inner = llama._chat_handlers.get("chat_template.default")
            if inner is None:
                guessed = llama_chat_format.guess_chat_format_from_gguf_metadata(llama.metadata)
                inner = llama_chat_format.get_chat_completion_handler(guessed or "llama-2")
            keep_tools = template_knows_tools(template)
        if not keep_tools:
            # Without the definitions in the prompt no tool can be chosen or forced either.
            tools = tool_choice = functions = function_call = None
        return inner(llama=llama, messages=normalize_messages(messages, keep_tools),
                     tools=tools, tool_choice=tool_choice, functions=functions,
                     function_call=function_call, **kwargs)

    return handler


def main(argv=None):
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--base_chat_format", default="")
    ours, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    from llama_cpp import llama_chat_format

    llama_chat_format.register_chat_completion_handler(CHAT_FORMAT)(make_handler(ours.base_chat_format))
    sys.argv = [sys.argv[0]] + rest
    from llama_cpp.server import __main__ as server

    # The server's main() parses the arguments and the config file, builds the app with the
    # create_app it imported, and hands it to uvicorn: wrap what it builds.
    create_app = server.create_app
    server.create_app = lambda **kwargs: ContentPartsMiddleware(create_app(**kwargs))
    server.main()


if __name__ == "__main__":
    main()
