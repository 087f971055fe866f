"""Connecting to any Argilla (ours from ``vecs argilla serve``, the official image, a Hugging Face Space).

Every failure becomes one line that says what to fix; API keys never appear in it.
"""
from __future__ import annotations

import os

import argilla as rg
from argilla._exceptions import ArgillaAPIError, ArgillaCredentialsError, ArgillaError

DEFAULT_URL = "http://127.0.0.1:6900"


class AnnotationError(RuntimeError):
    """A one-line, user-facing failure of an annotation command."""


def _redact(text: str, secrets: list[str]) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


def connect(api_url: str | None = None, api_key: str | None = None) -> rg.Argilla:
    """A client checked against the server (``ARGILLA_API_URL`` / ``ARGILLA_API_KEY`` by default)."""
    url = api_url or os.environ.get("ARGILLA_API_URL") or DEFAULT_URL
    key = api_key or os.environ.get("ARGILLA_API_KEY")
    if not key:
        raise AnnotationError("no Argilla API key: set ARGILLA_API_KEY (vecs argilla serve prints the owner's)")
    try:
        client = rg.Argilla(api_url=url, api_key=key, timeout=60)
        client.me  # noqa: B018 - the first request: wrong URL, server down and wrong key all show here
    except ArgillaCredentialsError:
        raise AnnotationError(f"Argilla at {url} rejected the API key (401 unauthorized)") from None
    except ArgillaAPIError as exc:
        status = getattr(exc, "status_code", None)
        if status == 401:
            raise AnnotationError(f"Argilla at {url} rejected the API key (401 unauthorized)") from None
        raise AnnotationError(f"Argilla at {url} answered an error: {_redact(str(exc), [key])[:200]}") from None
    except (ArgillaError, OSError, Exception) as exc:  # connection refused, DNS, TLS…
        reason = _redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, [key])
        raise AnnotationError(f"cannot reach Argilla at {url} ({reason[:200]})") from None
    return client


def workspace(client: rg.Argilla, name: str, create: bool = False) -> rg.Workspace:
    ws = client.workspaces(name)
    if ws is None:
        if not create:
            raise AnnotationError(f"workspace {name!r} does not exist or this key cannot see it "
                                  f"(create it, or pass --workspace)")
        ws = rg.Workspace(name=name, client=client).create()
    return ws
