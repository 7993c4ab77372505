"""Login for the VIP channels (``books-l2-tbt``, ``books50-l2-tbt``): credentials and the signed
login request (docs/protocol.md §7). The secret and passphrase never appear in
a repr, a log line or an exception."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Credentials", "login_request", "redact"]

# A login request's fields, quoted or not, as an echoing server may copy them into an error text.
# The copy may itself sit inside a JSON string (the raw frame a recorder keeps), where its quotes
# are escaped (\"sign\":\"...\"): the replacement keeps the quoting it found, so a redacted
# frame is still valid JSON.
_FIELD = re.compile(
    r"""((?:\\?["'])?(?:apiKey|api_key|passphrase|sign|secretKey|secret_key)(?:\\?["'])?\s*[:=]\s*)"""
    r"""(\\"(?:[^"\\]|\\[^"])*\\"|"[^"]*"|'[^']*'|[^\s,}\]\\]*)""",
    re.IGNORECASE,
)


def _masked(match: re.Match[str]) -> str:
    value = match.group(2)
    quote = '\\"' if value.startswith('\\"') else '"'
    return f"{match.group(1)}{quote}***{quote}"


@dataclass(frozen=True)
class Credentials:
    api_key: str
    secret_key: str = field(repr=False)
    passphrase: str = field(repr=False)

    @classmethod
    def from_env(cls) -> Credentials | None:
        """``OKX_API_KEY`` / ``OKX_SECRET_KEY`` / ``OKX_PASSPHRASE``, or None if any is unset."""
        key, secret, phrase = (
            os.environ.get(n) for n in ("OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE")
        )
        if key and secret and phrase:
            return cls(key, secret, phrase)
        return None

    def __repr__(self) -> str:
        return f"Credentials(api_key={self.api_key[:4]}…, secret_key=***, passphrase=***)"


def sign(secret_key: str, timestamp: str) -> str:
    """base64(HMAC-SHA256(secret, ts + "GET" + "/users/self/verify"))."""
    digest = hmac.new(
        secret_key.encode(), f"{timestamp}GET/users/self/verify".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


def login_request(credentials: Credentials, now: float | None = None) -> dict[str, Any]:
    """The ``op: login`` request; it expires 30 s after its timestamp (seconds)."""
    ts = str(int(time.time() if now is None else now))
    return {
        "op": "login",
        "args": [
            {
                "apiKey": credentials.api_key,
                "passphrase": credentials.passphrase,
                "timestamp": ts,
                "sign": sign(credentials.secret_key, ts),
            }
        ],
    }


def redact(text: str, credentials: Credentials | None = None) -> str:
    """``text`` received from a server with every copy of a login request's secrets replaced by
    ``***``: OKX error events echo the offending request (issue 14 item 3), so nothing okxbook
    stores, logs or prints may carry an apiKey, passphrase or sign it read back."""
    out = _FIELD.sub(_masked, text)
    if credentials is not None:
        for secret in (credentials.api_key, credentials.passphrase, credentials.secret_key):
            if len(secret) >= 8:  # a short value would mangle ordinary words
                out = out.replace(secret, "***")
    return out
