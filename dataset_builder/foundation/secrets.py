"""Secrets never travel to child processes: every tool the factory starts gets an environment without them.

The factory's own secrets (Gemini keys, the Hub token, a database URL with its password, Argilla keys) and
anything else that looks like one (``*_TOKEN``, ``*_SECRET``, ``*PASSWORD*``, ``*_API_KEY``…) are removed;
ffmpeg, espeak-ng, redis or a web server have no use for them, and a compromised or verbose tool cannot leak
what it never had.
"""
from __future__ import annotations

import os
import re

#: Named explicitly, whatever the patterns below say.
SECRET_ENV = ("GEMINI_API_KEY", "GEMINI_API_KEYS", "GOOGLE_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN",
              "VECS_DB_URL", "VECS_ARGILLA_DATABASE_URL", "ARGILLA_API_KEY", "DATABASE_URL")
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|API_?KEY|_KEYS?$|^AWS_|CREDENTIAL|DATABASE_URL|_DSN$", re.IGNORECASE)


def is_secret_env(name: str) -> bool:
    return name in SECRET_ENV or bool(_SECRET_NAME.search(name))


def child_env(extra: dict[str, str] | None = None, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process: this one's (or ``base``) without secrets, plus ``extra``."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if not is_secret_env(k)}
    env.update(extra or {})
    return env
