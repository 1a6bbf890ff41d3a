"""The ``hub`` command (click): one module per group of commands, all under ``main``.

serve, migrate, demo (``serve``); users, tokens (``accounts``); backup, restore (``data``);
simulate, staffing (``planning``); twilio, dev (``providers``); bench (``bench``).
"""

from hub.cli import accounts, bench, data, planning, providers, serve
from hub.cli.root import main

__all__ = ["accounts", "bench", "data", "main", "planning", "providers", "serve"]
