"""URLs without their secrets: what a store row, a log line or a published dataset may show of a source.

Credentials (``user:password@``), signatures and tokens in the query (``X-Amz-Signature``, ``token``,
``api_key``, ``sig``…) and fragments carrying them (``#access_token=…``) are removed; everything else is kept
byte for byte, so a YouTube ``watch?v=…&t=30`` stays what it was.
"""
from __future__ import annotations

import re
import urllib.parse

_SECRET_NAMES = {"key", "sig", "code", "expires", "policy", "auth", "authorization", "password", "pass", "pwd",
                 "session", "sessionid", "sid", "jwt", "hmac", "hash", "otp", "ticket",
                 "si"}  # YouTube's share id ties a link to the account that shared it
_SECRET_PARTS = ("token", "secret", "signature", "credential", "apikey", "api_key", "api-key", "passwd",
                 "password", "private", "key-pair-id")
_SECRET_PREFIXES = ("x-amz-", "x-goog-", "x-ms-", "x-oss-", "oauth_")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")


def secret_param(name: str) -> bool:
    name = name.strip().lower()
    return (name in _SECRET_NAMES or any(p in name for p in _SECRET_PARTS)
            or name.startswith(_SECRET_PREFIXES))


def _filter_params(text: str) -> str:
    kept = [piece for piece in text.split("&") if piece
            and not secret_param(urllib.parse.unquote_plus(piece.split("=", 1)[0]))]
    return "&".join(kept)


def strip_secrets(url: str) -> str:
    """``url`` without credentials, secret query parameters or secret fragments ('' if it cannot be parsed)."""
    try:
        parts = urllib.parse.urlsplit(str(url).strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return ""
    netloc = ""
    if host:
        netloc = f"[{host}]" if ":" in host else host
        if port is not None:
            netloc += f":{port}"
    elif parts.netloc and "@" not in parts.netloc:
        netloc = parts.netloc
    if parts.scheme and not _SCHEME.match(parts.scheme):
        return ""
    fragment = _filter_params(parts.fragment) if "=" in parts.fragment else parts.fragment
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, _filter_params(parts.query), fragment))
