"""A small HTTP client for the platforms' own APIs: GET JSON, retried politely, bounded, and
quiet about keys.

- 429 and 5xx are retried with exponential backoff (with jitter), honouring ``Retry-After``
  (seconds or an HTTP date) up to ``Policy.max_wait``.
- 404 is retried a few times before it means "not found": OpenRouter may answer 404 for a
  generation that finished a moment ago.
- Timeouts are retried; a reply body larger than ``Policy.max_body`` is refused unread.
- 401 and 403 mean the key was rejected, and connection failures mean the API cannot be
  reached: both stop the whole run (``RequestFailed.fatal``), since no later request would fare
  better.
- No message ever carries the key: it lives only in the request headers, and every text taken
  from a reply is scrubbed of it (and of anything that looks like a key) first.
"""

import email.utils
import json
import random
import threading
import time
from decimal import Decimal
from typing import Any, Mapping, NamedTuple, Optional
from urllib.parse import urlsplit

from ..redact import MASK, mask
from .common import EvidenceError

MAX_BODY = 1024 * 1024  # a generation or a usage page is a few KiB; more is not a reply we asked for
RETRIED = frozenset({408, 429, 500, 502, 503, 504, 520, 522, 524, 529})
FATAL_KINDS = frozenset({"auth", "network"})


class Policy(NamedTuple):
    """How patient the client is; tests shrink these to stay fast."""

    timeout: float = 30.0  # seconds to connect, and between bytes of the reply
    attempts: int = 5  # tries in all for 429, 5xx and timeouts
    not_found_attempts: int = 3  # tries in all for 404
    backoff: float = 1.0  # the first wait between tries; it doubles each time
    max_backoff: float = 16.0
    max_wait: float = 30.0  # the longest Retry-After honoured; a longer one is cut to this
    max_body: int = MAX_BODY


class RequestFailed(EvidenceError):
    """One request that did not give a usable reply; ``kind`` says why, for documents and tests:
    auth, not-found, rate-limited, server, timeout, network, malformed, too-large, refused."""

    def __init__(self, kind: str, message: str, status: Optional[int] = None):
        self.kind = kind
        self.status = status
        super().__init__(message)

    @property
    def fatal(self) -> bool:
        return self.kind in FATAL_KINDS


class Cancelled(EvidenceError):
    """The run was stopped (Ctrl-C, or another request failed fatally) while this one waited."""


def retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None or moment.tzinfo is None:
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def _server_message(body: bytes) -> str:
    """The error message a platform put in its reply ({"error": {"message": ...}}), if any."""
    try:
        document = json.loads(body[:65536])
    except (ValueError, RecursionError):
        return ""
    error = document.get("error") if isinstance(document, dict) else None
    message = error.get("message") if isinstance(error, dict) else error if isinstance(error, str) else None
    if not isinstance(message, str):
        return ""
    message = " ".join(message.split())
    return message[:200] + ("…" if len(message) > 200 else "")


class JsonClient:
    """GET requests to one API, safe to share between threads; use as a context manager."""

    def __init__(self, base_url: str, headers: Mapping[str, str], secret: str, policy: Policy = Policy(),
                 connections: int = 4):
        import httpx  # only here: other commands never pay for importing it

        self._httpx = httpx
        self.base_url = base_url.rstrip("/")
        self.host = urlsplit(self.base_url).netloc or self.base_url
        self.policy = policy
        self._secret = secret
        self.stopped = threading.Event()
        try:
            self._client = httpx.Client(
                headers={"accept-encoding": "gzip, deflate", **headers},  # what _decoded can unpack
                timeout=httpx.Timeout(policy.timeout),
                limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
                follow_redirects=False,  # a redirect must not carry the key anywhere else
            )
        except ValueError:  # httpx names the header, never its value
            raise EvidenceError("the API key contains characters that cannot be sent in a header; "
                                "check the variable holding it") from None

    def __enter__(self) -> "JsonClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def stop(self) -> None:
        """Make every waiting or later request end with Cancelled."""
        self.stopped.set()

    def scrub(self, text: str) -> str:
        """Text safe to show: the key itself, and anything that looks like a key, removed."""
        if self._secret:
            text = text.replace(self._secret, MASK)
        return mask(text)[0]

    def get_json(self, path: str, params: Mapping[str, Any], what: str) -> Any:
        """The JSON reply to GET base_url + path (floats read as Decimal), or RequestFailed.

        ``what`` names the request in messages, e.g. "generation gen-123"."""
        policy = self.policy
        url = self.base_url + path
        for attempt in range(1, max(policy.attempts, policy.not_found_attempts) + 1):
            if self.stopped.is_set():
                raise Cancelled(f"stopped before {what} was looked up")
            wait = None
            try:
                status, headers, body = self._fetch(url, params, what)
            except self._httpx.TimeoutException:
                if attempt >= policy.attempts:
                    raise RequestFailed("timeout", f"{self.host} did not answer for {what} within "
                                                   f"{policy.timeout:g} s ({attempt} tries)") from None
            except self._httpx.ConnectError as error:
                if attempt >= min(3, policy.attempts):
                    reason = self.scrub(str(error) or type(error).__name__)
                    raise RequestFailed("network", f"cannot reach {self.host} ({reason})") from None
            except self._httpx.TransportError as error:  # the connection broke mid-reply
                if attempt >= policy.attempts:
                    reason = self.scrub(str(error) or type(error).__name__)
                    raise RequestFailed("server", f"the reply for {what} broke off {attempt} times ({reason})") \
                        from None
            else:
                if 200 <= status < 300:
                    return self._parse(body, what)
                message = self.scrub(_server_message(body))
                said = f": {message}" if message else ""
                if status in (401, 403):
                    raise RequestFailed("auth", f"{self.host} rejected the API key (HTTP {status}{said}); "
                                                "check that it is current and allowed to read this", status)
                if status == 404:
                    if attempt >= policy.not_found_attempts:
                        raise RequestFailed("not-found", f"{what} was not found (HTTP 404 after {attempt} tries)",
                                            status)
                elif status in RETRIED:
                    if attempt >= policy.attempts:
                        kind = "rate-limited" if status == 429 else "server"
                        raise RequestFailed(kind, f"{self.host} answered HTTP {status} for {what} {attempt} times"
                                                  f"{said}", status)
                    wait = retry_after(headers.get("retry-after"))
                else:
                    raise RequestFailed("refused", f"{self.host} answered HTTP {status} for {what}{said}", status)
            self._sleep(attempt, wait, what)
        raise AssertionError("unreachable")  # the loop always returns or raises

    def _sleep(self, attempt: int, wait: Optional[float], what: str) -> None:
        policy = self.policy
        if wait is None:
            wait = min(policy.max_backoff, policy.backoff * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
        if self.stopped.wait(min(wait, policy.max_wait)):
            raise Cancelled(f"stopped before {what} was looked up")

    def _fetch(self, url: str, params: Mapping[str, Any], what: str) -> tuple[int, Any, bytes]:
        """Status, headers and at most max_body bytes of the reply (more raises too-large)."""
        limit = self.policy.max_body
        with self._client.stream("GET", url, params=params) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise RequestFailed("too-large", f"the reply for {what} is {int(declared):,} bytes, over the "
                                                 f"{limit:,}-byte limit; not read", response.status_code)
            chunks, size = [], 0
            for chunk in response.iter_raw():
                size += len(chunk)
                if size > limit:
                    raise RequestFailed("too-large", f"the reply for {what} is over the {limit:,}-byte limit; "
                                                     "not read", response.status_code)
                chunks.append(chunk)
            if response.headers.get("content-encoding", "identity") not in ("identity", ""):
                return response.status_code, response.headers, self._decoded(response, b"".join(chunks), what)
            return response.status_code, response.headers, b"".join(chunks)

    def _decoded(self, response: Any, raw: bytes, what: str) -> bytes:
        """A compressed reply, decoded with the same cap (a small gzip can unpack to gigabytes)."""
        import zlib

        encoding = response.headers.get("content-encoding", "").strip().lower()
        if encoding not in ("gzip", "deflate"):
            raise RequestFailed("malformed", f"the reply for {what} uses an unknown encoding ({encoding[:20]})")
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
        try:
            body = decoder.decompress(raw, self.policy.max_body + 1)
        except zlib.error:
            raise RequestFailed("malformed", f"the reply for {what} is not valid {encoding}") from None
        if len(body) > self.policy.max_body:
            raise RequestFailed("too-large", f"the reply for {what} unpacks to over the "
                                             f"{self.policy.max_body:,}-byte limit; not read")
        return body

    def _parse(self, body: bytes, what: str) -> Any:
        try:
            return json.loads(body, parse_float=Decimal)
        except (ValueError, RecursionError):
            raise RequestFailed("malformed", f"the reply for {what} is not JSON") from None
