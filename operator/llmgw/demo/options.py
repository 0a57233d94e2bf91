"""The arguments of `llmgw demo`, apart from the demo itself.

The CLI builds its parser for every command, and `llmgw validate` must work without the
`demo` extra (kmock, aiohttp): so the arguments live here, importing nothing, and the
demo is imported only when it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DEFAULT_PORT = 4000
DEFAULT_ESTATE = Path(__file__).resolve().parents[3] / "config" / "demo"
"""The demo estate shipped with the project (config/demo in the checkout)."""


def add_arguments(parser: Any) -> None:
    parser.add_argument(
        "target",
        nargs="*",
        metavar="DIR | get | fail NAME | recover NAME",
        help="the folder to apply (default: the demo estate, config/demo); or, for a running demo: "
        "get (what it shows), fail NAME / recover NAME (a fake backend answers 500, and back)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"the gateway Service's port on 127.0.0.1 (default {DEFAULT_PORT}; with --check, a free one)",
    )
    parser.add_argument(
        "--kubeconfig",
        metavar="PATH",
        default=None,
        help="where to write a kubeconfig for the embedded API (default: a file it names at start)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="run the rollout and rollback scenario without a terminal, on a copy of DIR; exit 0 or 1",
    )
