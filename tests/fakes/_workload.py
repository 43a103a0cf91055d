"""What runs inside a fake rented machine: an OpenAI-compatible model server.

The provider fakes rent no GPU, so the model server a real pod or instance would start (vLLM,
from the image and its arguments) is stood in for by a real local one (llama.cpp, or any
OpenAI-compatible server) given as ``upstream``. Requests that reach the machine's exposed
port are relayed to it, streaming included, after the check vLLM itself makes: when the
machine's environment holds ``VLLM_API_KEY``, every ``/v1`` request needs
``Authorization: Bearer <that key>`` (401 otherwise), while ``/health`` needs none.

``/v1/models`` lists the served model name from the machine's arguments
(``--served-model-name``, else ``--model``), as vLLM does, and ``/health`` answers 200; without
an upstream every other path answers the model list too (provisioning tests need no more).
"""

import http.client
import json
import threading
from http.server import ThreadingHTTPServer
from urllib.parse import urlsplit

from _fakehttp import OneWriteHandler, send_json

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
               "proxy-authorization", "proxy-authenticate", "host", "content-length"}


def env_value(env, key):
    """A variable of a machine's environment, given as ["K=V", ...], [{"key", "value"}] or a dict."""
    if isinstance(env, dict):
        return env.get(key)
    for item in env or []:
        if isinstance(item, dict):
            if item.get("key") == key:
                return item.get("value")
        elif isinstance(item, str) and item.startswith(key + "="):
            return item.split("=", 1)[1]
    return None


def served_model_name(args, default):
    """What vLLM lists in /v1/models: --served-model-name, else --model, from the machine's args."""
    argv = args.split() if isinstance(args, str) else list(args or [])
    for flag in ("--served-model-name", "--model"):
        for index, arg in enumerate(argv):
            if arg == flag and index + 1 < len(argv):
                return argv[index + 1]
            if arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
    return default


def serve(handler, method, path, upstream, api_key, model_name, body=None):
    """Answer one request that reached the machine's model port (``path`` starts with /)."""
    if not path.startswith("/"):
        path = "/" + path
    bare = path.split("?", 1)[0].rstrip("/")
    if api_key and bare.startswith("/v1"):
        if (handler.headers.get("Authorization") or "") != "Bearer %s" % api_key:
            return send_json(handler, 401, {"error": {"message": "Unauthorized", "type": "invalid_request_error",
                                                      "code": 401}})
    # The model list and the health check are the machine's own (vLLM's), whatever serves it.
    if bare == "/health" or (not upstream and bare == ""):
        return send_json(handler, 200, {})
    if bare == "/v1/models" or not upstream:
        return send_json(handler, 200, {"object": "list", "data": [
            {"id": model_name, "object": "model", "owned_by": "vllm", "root": model_name}]})
    return relay(handler, method, upstream, path, body)


def relay(handler, method, upstream, path, body):
    """Relay the request to ``upstream`` (a base URL) and stream its answer back."""
    target = urlsplit(upstream)
    prefix = target.path.rstrip("/")
    conn = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=600)
    headers = dict((k, v) for k, v in handler.headers.items() if k.lower() not in HOP_HEADERS
                   and k.lower() != "authorization")
    try:
        conn.request(method, prefix + path, body=body, headers=headers)
        answer = conn.getresponse()
    except OSError as exc:
        return send_json(handler, 502, {"error": "model server unreachable: %s" % exc})
    try:
        handler.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in HOP_HEADERS:
                handler.send_header(key, value)
        length = answer.getheader("Content-Length")
        if length is not None:
            handler.send_header("Content-Length", length)
        else:
            handler.send_header("Connection", "close")
            handler.close_connection = True
        handler.end_headers()
        while True:
            chunk = answer.read1(65536)
            if not chunk:
                break
            handler.wfile.write(chunk)
            handler.wfile.flush()
    finally:
        conn.close()
    return None


class PortServer:
    """One exposed port of a fake machine: an HTTP listener on a free local port."""

    def __init__(self, host, describe):
        """``describe()`` returns (running, upstream, api_key, model_name) at request time."""
        server_self = self

        class Handler(OneWriteHandler):
            def _handle(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                running, upstream, api_key, model_name = server_self.describe()
                if not running:
                    return send_json(self, 502, {"error": "instance not running"})
                return serve(self, method, self.path, upstream, api_key, model_name, body)

            def do_GET(self):  # noqa: N802
                self._handle("GET")

            def do_POST(self):  # noqa: N802
                self._handle("POST")

        self.describe = describe
        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------------------------
# A machine that runs its container's command. A provider fake that is given an entrypoint
# override (Vast.ai run type "args" with "onstart") runs entrypoint + args on this host, the way
# the container would, with only what a GPU-less test machine cannot have substituted, each
# substitution logged: the vLLM program (a stand-in relaying to ``upstream``, or the real CPU
# build), the weights (a tiny local model), the container's own network namespace (--host and
# --port become a free loopback port, reached through the machine's public port as Docker's
# port mapping would). Whatever the command does with its other arguments and its environment
# (TLS included) is what the machine's public port serves.

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

STANDIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vllm_standin.py")
VLLM_PROGRAM = ["python3", "-m", "vllm.entrypoints.openai.api_server"]


def free_port(host="127.0.0.1"):
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _replace_value(argv, flag, value):
    """argv with the value of ``flag`` (``--flag v`` or ``--flag=v``) replaced; (argv, old)."""
    out, old, index = [], None, 0
    while index < len(argv):
        arg = argv[index]
        if arg == flag and index + 1 < len(argv):
            old = argv[index + 1]
            out += [arg, value]
            index += 2
            continue
        if arg.startswith(flag + "="):
            old = arg.split("=", 1)[1]
            out.append(flag + "=" + value)
        else:
            out.append(arg)
        index += 1
    return out, old


class MachineProcess:
    """The container command of one fake machine, started once the machine runs."""

    def __init__(self, workdir, entrypoint, args, env, public_ip, ports, vllm_command=None,
                 model_dir=None, upstream=None, extra_env=None):
        """``ports``: {container port: public port}; ``vllm_command``: argv replacing the vLLM
        program (default: the stand-in relaying to ``upstream``); ``model_dir``: weights
        substituted for --model (real vLLM only)."""
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.log_path = os.path.join(workdir, "container.log")
        self.substitutions = []
        argv = shlex.split(entrypoint) + list(args or [])
        program_at = next((i for i in range(len(argv)) if argv[i:i + len(VLLM_PROGRAM)] == VLLM_PROGRAM),
                          None)
        if program_at is None:
            raise ValueError("the container command runs no %s: %r" % (" ".join(VLLM_PROGRAM), argv))
        program = list(vllm_command) if vllm_command else [sys.executable, STANDIN]
        head, tail = argv[:program_at], argv[program_at + len(VLLM_PROGRAM):]
        self._note("program", " ".join(VLLM_PROGRAM), " ".join(program))
        self.local_ports = {}
        local = free_port()
        tail, old = _replace_value(tail, "--port", str(local))
        if old is not None:
            self.local_ports[int(old)] = local
            self._note("--port (container network)", old, str(local))
        tail, old = _replace_value(tail, "--host", "127.0.0.1")
        if old is not None:
            self._note("--host (container network)", old, "127.0.0.1")
        if model_dir:
            tail, old = _replace_value(tail, "--model", model_dir)
            self._note("--model (weights)", old, model_dir)
        self.argv = head + program + tail
        # the container's own /tmp: short, since vLLM puts unix sockets there (108-byte limit)
        self.tmpdir = tempfile.mkdtemp(prefix="fake-vm-")
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": workdir,
                    "TMPDIR": self.tmpdir, "PUBLIC_IPADDR": public_ip}
        for container_port, public_port in ports.items():
            self.env["VAST_TCP_PORT_%d" % container_port] = str(public_port)
        self.env.update(dict((str(k), str(v)) for k, v in (env or {}).items() if not str(k).startswith("-")))
        if upstream and not vllm_command:
            self.env["CODESTACK_FAKE_UPSTREAM"] = upstream
        for key, value in (extra_env or {}).items():
            self.env[key] = str(value)
            self._note("environment", key, str(value))
        self.process = None

    def _note(self, what, old, new):
        self.substitutions.append({"what": what, "container": old, "here": new})

    def start(self):
        if self.process is not None:
            return
        with open(self.log_path, "a") as log:
            log.write("# fake machine: substitutions %s\n" % json_dumps(self.substitutions))
            log.flush()
            self.process = subprocess.Popen(self.argv, env=self.env, cwd=self.workdir, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)

    def target(self, container_port):
        return self.local_ports.get(int(container_port))

    def running(self):
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines=20):
        try:
            with open(self.log_path) as handle:
                return handle.read().splitlines()[-lines:]
        except OSError:
            return []

    def stop(self):
        process, self.process = self.process, None
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except OSError:
                pass
            process.wait(timeout=5)


def json_dumps(value):
    return json.dumps(value)


class TcpForward:
    """A machine's public port: bytes relayed as they are to the container's port (TLS passes
    through untouched, as through Docker's port mapping). ``target()`` returns the local port,
    or None while nothing listens (the connection is then closed, like a refused one)."""

    def __init__(self, host, target):
        self.target = target
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                client, _addr = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        port = self.target()
        upstream = None
        try:
            if port is None:
                return
            upstream = socket.create_connection(("127.0.0.1", port), timeout=5)
            upstream.settimeout(None)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
            self._pump(client, upstream)
        except OSError:
            pass
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    try:
                        sock.close()
                    except OSError:
                        pass

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass
