"""The retry schedule shared by every API client (module_utils/_http.Backoff): HttpClient and the
Exoscale SDK calls wait the same way."""

from ansible_collections.llmops.codestack.plugins.module_utils._http import Backoff


def test_waits_double_up_to_the_cap_and_stop_after_the_retries():
    slept = []
    backoff = Backoff(retries=4, initial=1.0, cap=3.0, sleep=slept.append)
    waits = []
    while not backoff.exhausted():
        waits.append(backoff.pause(500))
    assert waits == [1.0, 2.0, 3.0, 3.0]
    # 0-10 % jitter on top of each wait, never less
    assert all(w <= s <= w * 1.1 for w, s in zip(waits, slept))


def test_retry_after_is_honoured_on_429_and_503_only_and_capped():
    backoff = Backoff(retries=5, initial=1.0, cap=30.0, sleep=lambda _s: None)
    assert backoff.next_wait(429, {"Retry-After": "7"}) == 7.0
    assert backoff.next_wait(503, {"Retry-After": "120"}) == 30.0
    assert backoff.next_wait(500, {"Retry-After": "7"}) == 1.0
    assert backoff.next_wait(429, {"Retry-After": "soon"}) == 1.0
    assert backoff.next_wait(None, None) == 1.0


def test_an_announced_wait_is_the_one_slept():
    slept = []
    backoff = Backoff(retries=1, initial=2.0, cap=30.0, sleep=slept.append)
    wait = backoff.next_wait(429, {"Retry-After": "5"})
    assert backoff.pause(wait=wait) == 5.0 and 5.0 <= slept[0] <= 5.5
    assert backoff.exhausted()
