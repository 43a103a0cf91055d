# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One small HTTP helper shared by every provider client.

Retries 429/502/503/504 (and connection errors) with exponential backoff that honours
``Retry-After``; raises :class:`ApiError` for everything else. Never logs or returns the token.
Only the standard library is used so that the code runs inside AnsiballZ payloads.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import random
import socket
import time

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.six.moves.urllib.parse import urlencode
from ansible.module_utils.urls import Request

RETRY_STATUSES = (429, 502, 503, 504)


class ApiError(Exception):
    """An API call failed. ``status`` is the HTTP status (0 for network errors)."""

    def __init__(self, status, message, body=None, code=None):
        super(ApiError, self).__init__(message)
        self.status = status
        self.message = message
        self.body = body
        self.code = code

    def __str__(self):
        if self.status:
            return "HTTP %s: %s" % (self.status, self.message)
        return self.message


def _retry_after(headers, default):
    value = headers.get("Retry-After") if headers else None
    if value is None:
        return default
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return default


class Backoff:
    """The retry schedule every API client of the collection shares (this module's HttpClient and
    _exoscale's SDK calls): at most ``retries`` retries, waits doubling from ``initial`` up to
    ``cap``, the server's ``Retry-After`` honoured on 429 and 503, 0-10 % jitter so that
    parallel workers do not retry in lockstep."""

    def __init__(self, retries, initial, cap, sleep=time.sleep):
        self.retries = retries
        self.delay = initial
        self.cap = cap
        self.retried = 0
        self._sleep = sleep

    def exhausted(self):
        return self.retried >= self.retries

    def next_wait(self, status=None, headers=None):
        """The wait before the next attempt (before jitter), to announce before ``pause``."""
        wait = _retry_after(headers, self.delay) if status in (429, 503) else self.delay
        return min(self.cap, wait)

    def pause(self, status=None, headers=None, wait=None):
        """Sleep before the next attempt (``wait``, else ``next_wait``); returns the wait."""
        wait = self.next_wait(status, headers) if wait is None else wait
        self._sleep(wait * (1 + random.random() * 0.1))
        self.delay = min(self.cap, self.delay * 2)
        self.retried += 1
        return wait


class HttpClient:
    """JSON over HTTP with bearer auth, timeouts and bounded retries."""

    def __init__(self, base_url, token=None, timeout=30, retries=5, backoff=1.0,
                 max_backoff=30.0, user_agent="llmops.codestack", sleep=time.sleep,
                 auth_header="Authorization", auth_scheme="Bearer", ca_path=None):
        self.base_url = base_url.rstrip("/")
        # Only this CA file is trusted when set (a pinned private authority), not the system store.
        self.ca_path = ca_path
        self.token = token
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.user_agent = user_agent
        self.auth_header = auth_header
        self.auth_scheme = auth_scheme
        self._sleep = sleep
        self.attempts = 0
        # Callers with non-idempotent requests narrow these (see _vast.VastClient.create_instance).
        self.retry_statuses = RETRY_STATUSES
        self.retry_network = True

    def _headers(self):
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "User-Agent": self.user_agent}
        if self.token:
            headers[self.auth_header] = ("%s %s" % (self.auth_scheme, self.token)).strip()
        return headers

    def url(self, path, query=None):
        url = self.base_url + "/" + path.lstrip("/")
        if query:
            url += "?" + urlencode(sorted(query.items()))
        return url

    def request(self, method, path, body=None, query=None, expect=(200, 201, 202, 204),
                reader=None):
        """Send one call, retrying transient failures. Returns the decoded JSON (or None).

        ``reader(response, sent_at)`` consumes a successful response itself (a stream read line
        by line); ``sent_at`` is the ``time.monotonic()`` at which that attempt was sent, and
        what the reader returns is returned. A network error while it reads is retried too.
        """
        data = json.dumps(body).encode("utf-8") if body is not None else None
        url = self.url(path, query)
        backoff = Backoff(self.retries, self.backoff, self.max_backoff, self._sleep)
        while True:
            self.attempts += 1
            if reader is None:
                status, headers, payload, network_error = self._send(method, url, data)
            else:
                status, headers, payload, network_error = self._send(method, url, data, reader,
                                                                     expect)
            if network_error is None and status in expect:
                return payload if reader is not None else _decode(payload)
            retryable = (self.retry_network if network_error is not None
                         else status in self.retry_statuses)
            if not retryable or backoff.exhausted():
                if network_error is not None:
                    raise ApiError(0, "cannot reach %s: %s" % (self.base_url, network_error))
                raise _error_from(status, payload)
            backoff.pause(status if network_error is None else None, headers)

    def _send(self, method, url, data, reader=None, expect=()):
        req = Request(headers=self._headers(), timeout=self.timeout, follow_redirects="safe",
                      ca_path=self.ca_path)
        try:
            sent_at = time.monotonic()
            resp = req.open(method, url, data=data)
            status = resp.getcode()
            if reader is not None and status in expect:
                return status, dict(resp.headers), reader(resp, sent_at), None
            return status, dict(resp.headers), resp.read(), None
        except HTTPError as exc:
            try:
                payload = exc.read()
            except Exception:  # pylint: disable=broad-except
                payload = b""
            return exc.code, dict(exc.headers or {}), payload, None
        except (URLError, socket.timeout, ConnectionError, OSError) as exc:
            return 0, {}, b"", exc


def _decode(payload):
    if not payload:
        return None
    try:
        return json.loads(payload.decode("utf-8"))
    except ValueError:
        return {"raw": payload.decode("utf-8", "replace")}


def _error_from(status, payload):
    body = _decode(payload)
    message = None
    code = None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            message = err.get("message")
            code = err.get("code")
        elif isinstance(err, str):
            message = err
        message = message or body.get("msg") or body.get("message") or body.get("detail")
    if status == 401:
        message = "authentication failed (HTTP 401): check api_token%s" % (
            " (%s)" % message if message else "")
    return ApiError(status, message or "unexpected HTTP status %s" % status, body=body, code=code)
