"""Which run an MQTT message belongs to and, with a shared key, who may have sent it.

Every payload a role publishes is sealed::

    b"NLK1" | flags (1 byte; bit 0: signed) | run token (8 bytes) | HMAC-SHA256 (32 bytes,
    when signed) | body

The run token is fresh for every run (``secrets``), so messages of another run on the same run
id, replays of an earlier run and retained messages from the past never count. The token is
not secret: anyone who reads the broker sees it. With a shared key (``--key-file`` or
``NOISYLINK_MQTT_KEY``) every message also carries an HMAC over its topic, its token and its
body; unsigned or wrongly signed messages are dropped, so only holders of the key can inject
or alter messages. Dropped messages are counted per reason and reported once each.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from noisylink.errors import NoisylinkError

MAGIC = b"NLK1"
TOKEN_BYTES = 8
MAC_BYTES = 32
SIGNED = 0x01
PREFIX_BYTES = len(MAGIC) + 1 + TOKEN_BYTES
NO_TOKEN = bytes(TOKEN_BYTES)  # probes, sent before a role knows its run's token
KEY_ENV = "NOISYLINK_MQTT_KEY"
MIN_KEY_BYTES = 16

REASONS = {
    "malformed": "that does not follow the message schema",
    "inconsistent": "that does not fit the run's plan",
    "foreign": "of another run (or a replay of an earlier one)",
    "retained": "retained on the broker from the past",
    "unsigned": "without a signature (this role has a key)",
    "forged": "with a wrong signature",
    "unverifiable": "signed, but this role has no key to check it",
}


class Rejected(Exception):  # noqa: N818 - reads as what happened to the message
    """A message that does not count; ``reason`` is a key of ``REASONS``."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{REASONS[reason]}{f' ({detail})' if detail else ''}")


class RunClashError(NoisylinkError):
    """Another set of roles claims the same run id at the same time."""


def new_token() -> bytes:
    while (token := secrets.token_bytes(TOKEN_BYTES)) == NO_TOKEN:
        pass
    return token


def parse_token(text: str) -> bytes:
    """A run token given on the command line (hex)."""
    try:
        token = bytes.fromhex(text)
    except ValueError:
        token = b""
    if len(token) != TOKEN_BYTES or token == NO_TOKEN:
        raise NoisylinkError(f"--run-token must be {2 * TOKEN_BYTES} hex digits, got {text!r}")
    return token


def load_key(key_file: Path | None) -> bytes | None:
    """The shared key from ``key_file`` (its bytes, a trailing newline dropped) or from
    ``NOISYLINK_MQTT_KEY``; None when neither is given."""
    if key_file is not None:
        try:
            key = key_file.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise NoisylinkError(f"--key-file {key_file}: {exc.strerror or exc}") from None
        where = f"--key-file {key_file}"
    elif os.environ.get(KEY_ENV):
        key, where = os.environ[KEY_ENV].encode(), KEY_ENV
    else:
        return None
    if len(key) < MIN_KEY_BYTES:
        raise NoisylinkError(f"{where}: the key must have at least {MIN_KEY_BYTES} bytes, "
                             f"has {len(key)}")
    return key


@dataclass(frozen=True)
class Seal:
    """Seals and opens payloads; signs and checks them when it holds a key."""

    key: bytes | None = field(default=None, repr=False)

    def _mac(self, topic: str, prefix: bytes, body: bytes) -> bytes:
        assert self.key is not None
        mac = hmac.new(self.key, topic.encode() + b"\0" + prefix, hashlib.sha256)
        mac.update(body)  # not concatenated: a frame's body is tens of kilobytes
        return mac.digest()

    def seal(self, topic: str, token: bytes, body: bytes) -> bytes:
        prefix = MAGIC + bytes([SIGNED if self.key else 0]) + token
        if self.key is None:
            return prefix + body
        return prefix + self._mac(topic, prefix, body) + body

    def open(self, topic: str, data: bytes) -> tuple[bytes, bytes]:
        """The token and body of a sealed payload; ``Rejected`` when it is not sealed or
        its signature does not hold."""
        if len(data) < PREFIX_BYTES or not data.startswith(MAGIC):
            raise Rejected("malformed", "no seal")
        flags = data[len(MAGIC)]
        token = data[len(MAGIC) + 1 : PREFIX_BYTES]
        if flags & ~SIGNED:
            raise Rejected("malformed", f"unknown flags {flags:#x}")
        if not flags & SIGNED:
            if self.key is not None:
                raise Rejected("unsigned")
            return token, data[PREFIX_BYTES:]
        if self.key is None:
            raise Rejected("unverifiable")
        mac, body = data[PREFIX_BYTES : PREFIX_BYTES + MAC_BYTES], data[PREFIX_BYTES + MAC_BYTES :]
        if len(mac) != MAC_BYTES or not hmac.compare_digest(
            mac, self._mac(topic, data[:PREFIX_BYTES], body)
        ):
            raise Rejected("forged")
        return token, body


class Rejections:
    """Counts of dropped messages per reason; the first of each reason is reported."""

    def __init__(self, role: str, report: Callable[[str], None]):
        self.role = role
        self.report = report
        self.counts: Counter[str] = Counter()

    def add(self, rejected: Rejected, topic: str) -> None:
        if not self.counts[rejected.reason]:
            self.report(f"warning: {self.role}: dropped a message {rejected} on {topic}; "
                        f"further ones are counted, not shown")
        self.counts[rejected.reason] += 1

    def as_dict(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))
