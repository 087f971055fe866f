"""The consoles every ``vecs`` command prints to: errors stay one line however long, tables fit a pipe."""
from __future__ import annotations

import sys

from rich.console import Console

err = Console(stderr=True, soft_wrap=True)
out = Console(width=None if sys.stdout.isatty() else 140)
