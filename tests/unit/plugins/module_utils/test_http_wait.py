import pytest

from ansible_collections.llmops.codestack.plugins.module_utils import _http, _wait


class ScriptedClient(_http.HttpClient):
    """HttpClient whose transport replays a script of (status, headers, body, error)."""

    def __init__(self, script, **kwargs):
        self.sleeps = []
        super().__init__("https://api.example.test/", token="secret-token", sleep=self.sleeps.append,
                         **kwargs)
        self.script = list(script)
        self.sent = []

    def _send(self, method, url, data):
        self.sent.append((method, url, data, self._headers()))
        return self.script.pop(0)


def test_success_decodes_json_and_sends_bearer():
    client = ScriptedClient([(200, {}, b'{"ok": true}', None)])
    assert client.request("POST", "/graphql", body={"query": "q"}) == {"ok": True}
    method, url, data, headers = client.sent[0]
    assert (method, url) == ("POST", "https://api.example.test/graphql")
    assert headers["Authorization"] == "Bearer secret-token"
    assert data == b'{"query": "q"}'


def test_429_honours_retry_after_then_succeeds():
    client = ScriptedClient([(429, {"Retry-After": "7"}, b"", None), (200, {}, b"{}", None)])
    assert client.request("GET", "x") == {}
    assert len(client.sleeps) == 1 and 7 <= client.sleeps[0] <= 7.7


def test_5xx_backs_off_exponentially_and_gives_up():
    script = [(502, {}, b'{"error": {"message": "bad gateway"}}', None)] * 4
    client = ScriptedClient(script, retries=3, backoff=1.0)
    with pytest.raises(_http.ApiError) as err:
        client.request("GET", "x")
    assert err.value.status == 502 and "bad gateway" in str(err.value)
    assert [round(s) for s in client.sleeps] == [1, 2, 4]


def test_401_is_not_retried_and_says_what_to_fix():
    client = ScriptedClient([(401, {}, b'{"error": "invalid key"}', None)])
    with pytest.raises(_http.ApiError) as err:
        client.request("GET", "x")
    assert err.value.status == 401 and "api_token" in err.value.message
    assert "secret-token" not in str(err.value) and client.sleeps == []


def test_network_error_retried_then_reported():
    client = ScriptedClient([(0, {}, b"", OSError("refused"))] * 2, retries=1)
    with pytest.raises(_http.ApiError) as err:
        client.request("GET", "x")
    assert err.value.status == 0 and "cannot reach" in str(err.value)


def test_query_is_url_encoded_not_formatted():
    client = ScriptedClient([(200, {}, b"{}", None)])
    client.request("GET", "/instances", query={"owner": "me", "q": "a&b=c"})
    assert client.sent[0][1] == "https://api.example.test/instances?owner=me&q=a%26b%3Dc"


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_wait_for_returns_when_done():
    clock = FakeClock()
    values = iter(["created", "loading", "running"])
    seen = []
    result = _wait.wait_for(lambda: next(values), lambda v: v == "running", timeout=60, sleep=5,
                            clock=clock, sleeper=clock.sleep,
                            progress=lambda v, t: seen.append((v, t)))
    assert result == "running" and [value for value, dummy in seen] == ["created", "loading", "running"]
    assert clock.now == 10


def test_wait_for_times_out_with_last_value():
    clock = FakeClock()
    with pytest.raises(_wait.WaitTimeout) as err:
        _wait.wait_for(lambda: "loading", lambda v: False, timeout=12, sleep=5, clock=clock,
                       sleeper=clock.sleep, what="pod abc")
    assert err.value.last == "loading" and "pod abc" in str(err.value)
    assert clock.now <= 12
