"""Unit tests of module_utils/_vast.py against a scripted HTTP layer (no network)."""

import json

import pytest

from ansible_collections.llmops.codestack.plugins.module_utils._http import ApiError, HttpClient
from ansible_collections.llmops.codestack.plugins.module_utils import _vast
from ansible_collections.llmops.codestack.plugins.module_utils._vast import (
    CapacityError, VastClient, make_label, offer_query, parse_order, split_label)


class ScriptedHttp(HttpClient):
    """An HttpClient whose wire is a list of canned (status, headers, body) answers."""

    def __init__(self, answers):
        super().__init__("https://vast.example", token="k", sleep=self._sleep_record)
        self.answers = list(answers)
        self.sent = []
        self.sleeps = []

    def _sleep_record(self, seconds):
        self.sleeps.append(seconds)

    def _send(self, method, url, data):
        self.sent.append((method, url, json.loads(data) if data else None))
        status, headers, body = self.answers.pop(0)
        return status, headers, json.dumps(body).encode(), None


@pytest.mark.parametrize("order, expected", [
    (["dph_total", "-reliability"], [["dph_total", "asc"], ["reliability", "desc"]]),
    (["+score"], [["score", "asc"]]),
    ([], []),
])
def test_parse_order(order, expected):
    assert parse_order(order) == expected


def test_offer_query_builds_operator_filters():
    query = offer_query(gpu_name=["RTX 4090"], num_gpus=2, min_gpu_ram_gb=24, max_dph=0.5,
                        min_reliability=0.95, verified=True, geolocation=["NO"], min_cuda=12.1,
                        offer_type="bid", limit=5)
    assert query["gpu_name"] == {"in": ["RTX 4090"]}
    assert query["num_gpus"] == {"eq": 2}
    assert query["gpu_ram"] == {"gte": 24000.0}
    assert query["dph_total"] == {"lte": 0.5}
    assert query["reliability"] == {"gte": 0.95}
    assert query["geolocation"] == {"in": ["NO"]}
    assert query["cuda_max_good"] == {"gte": 12.1}
    assert query["rented"] == {"eq": False}
    assert query["type"] == "bid" and query["limit"] == 5
    assert query["order"] == [["dph_total", "asc"]]


@pytest.mark.parametrize("label, expected", [
    ("stack--coder", ("stack", "coder")),
    ("stack--a--b", ("stack", "a--b")),
    ("plain", (None, "plain")),
    (None, (None, None)),
])
def test_labels(label, expected):
    assert split_label(label) == expected
    if expected[0]:
        assert split_label(make_label(*expected)) == expected


def test_success_false_on_create_is_capacity_error():
    http = ScriptedHttp([(200, {}, {"success": False, "error": "no_such_ask",
                                    "msg": "Instance type by id 7 is not available."})])
    with pytest.raises(CapacityError) as info:
        VastClient("k", http=http).create_instance(7, {"image": "x"})
    assert "not available" in info.value.message
    assert http.sent[0][:2] == ("PUT", "https://vast.example/api/v0/asks/7/")


def test_success_false_other_error_is_api_error_not_capacity():
    http = ScriptedHttp([(400, {}, {"success": False, "error": "invalid_args", "msg": "bad disk"})])
    with pytest.raises(ApiError) as info:
        VastClient("k", http=http).create_instance(7, {"image": "x"})
    assert not isinstance(info.value, CapacityError)
    assert info.value.code == "invalid_args" and "bad disk" in info.value.message


def test_401_gives_one_clear_message_without_retry():
    http = ScriptedHttp([(401, {}, {"success": False, "error": "auth_error"})])
    with pytest.raises(ApiError) as info:
        VastClient("k", http=http).search_offers({})
    assert info.value.status == 401
    assert info.value.message == _vast.AUTH_MESSAGE
    assert len(http.sent) == 1


def test_retry_after_is_honoured():
    http = ScriptedHttp([(429, {"Retry-After": "0.25"}, {}), (200, {}, {"offers": [{"id": 1}]})])
    assert VastClient("k", http=http).search_offers({}) == [{"id": 1}]
    assert 0.25 <= http.sleeps[0] < 0.3


def test_list_instances_follows_next_token_with_urlencoded_json():
    http = ScriptedHttp([
        (200, {}, {"instances": [{"id": 1}], "next_token": "t1", "total_instances": 2}),
        (200, {}, {"instances": [{"id": 2}], "next_token": None, "total_instances": 2}),
    ])
    rows = VastClient("k", http=http).list_instances({"label": {"eq": "a&b=c--d"}})
    assert [r["id"] for r in rows] == [1, 2]
    first, second = http.sent[0][1], http.sent[1][1]
    assert "select_filters=%7B%22label%22%3A+%7B%22eq%22%3A+%22a%26b%3Dc--d%22%7D%7D" in first
    assert "after_token=t1" in second and "after_token" not in first


def test_missing_instance_reads_as_none_and_destroy_of_unknown_is_false():
    http = ScriptedHttp([(200, {}, {"instances": None}),
                         (404, {}, {"success": False, "error": "no_such_instance", "msg": "gone"})])
    client = VastClient("k", http=http)
    assert client.get_instance(5) is None
    assert client.destroy_instance(5) is False


def test_create_after_502_adopts_the_instance_the_api_created_instead_of_renting_twice():
    http = ScriptedHttp([
        (502, {}, {"error": "Bad Gateway"}),
        (200, {}, {"instances": [{"id": 77, "label": "s--coder"}], "next_token": None}),
    ])
    assert VastClient("k", http=http).create_instance(7, {"image": "x", "label": "s--coder"}) == 77
    assert [m for m, _url, _body in http.sent] == ["PUT", "GET"]


def test_create_after_503_with_nothing_created_sends_again():
    http = ScriptedHttp([
        (503, {}, {"error": "Service Unavailable"}),
        (200, {}, {"instances": [], "next_token": None}),
        (200, {}, {"success": True, "new_contract": 78}),
    ])
    assert VastClient("k", http=http).create_instance(7, {"image": "x", "label": "s--coder"}) == 78
    assert [m for m, _url, _body in http.sent] == ["PUT", "GET", "PUT"]
    assert http.sleeps == [1.0]


def test_create_429_is_retried_directly():
    http = ScriptedHttp([(429, {"Retry-After": "0.1"}, {}),
                         (200, {}, {"success": True, "new_contract": 79})])
    assert VastClient("k", http=http).create_instance(7, {"image": "x", "label": "s--c"}) == 79
    assert [m for m, _url, _body in http.sent] == ["PUT", "PUT"]
