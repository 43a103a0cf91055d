"""Drive Debian's Chromium headless over the DevTools protocol (websocket-client, no Playwright).

Only what the IDE test needs: open a page, run JavaScript, wait for a condition, take a
screenshot. Chromium runs with a fresh profile, no GPU, no background networking.
"""

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.request

import websocket

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-default-apps", "--disable-extensions", "--window-size=1280,800"]


def chromium_binary():
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    def __init__(self, profile_dir, log_path, home=None):
        """``home``: the HOME Chromium runs with (its NSS database, <home>/.pki/nssdb, holds the
        certificate authorities it trusts besides the system's)."""
        self.profile = str(profile_dir)
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [chromium_binary()] + FLAGS + ["--user-data-dir=" + self.profile,
                                           "--remote-debugging-address=127.0.0.1",
                                           "--remote-debugging-port=0", "about:blank"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
            env=dict(os.environ, HOME=str(home)) if home else None)
        self.port = self._devtools_port()
        self.ws = websocket.create_connection(self._page_ws(), timeout=60,
                                              suppress_origin=True)
        self._id = 0

    def _devtools_port(self, timeout=60):
        path = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("chromium exited with %s" % self.proc.returncode)
            if os.path.exists(path):
                with open(path) as handle:
                    first = handle.readline().strip()
                if first:
                    return int(first)
            time.sleep(0.2)
        raise TimeoutError("chromium did not open its DevTools port")

    def _page_ws(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % self.port, timeout=10) as r:
            targets = json.load(r)
        page = [t for t in targets if t.get("type") == "page"][0]
        return page["webSocketDebuggerUrl"]

    def call(self, method, **params):
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError("%s: %s" % (method, message["error"]))
                return message.get("result", {})

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        return result.get("result", {}).get("value")

    def navigate(self, url):
        self.call("Page.enable")
        self.call("Page.navigate", url=url)

    def wait_for(self, expression, timeout=120.0):
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.5)
        raise TimeoutError("condition not met within %.0fs: %s (last %r)" % (timeout, expression, value))

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as handle:
            handle.write(base64.b64decode(data))
        return path

    def close(self):
        try:
            self.ws.close()
        except Exception:  # pylint: disable=broad-except
            # best effort on teardown
            pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(10)
        self.log.close()
