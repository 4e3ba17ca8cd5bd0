"""The command line: ``scrapy-actor-events`` or ``python -m scrapy_actor_events``.

This module only wires argparse to the commands' modules. Exit codes: see
:mod:`scrapy_actor_events.exit_codes`.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from .. import __version__
from ..exit_codes import ExitCode

if TYPE_CHECKING:
    from collections.abc import Sequence


def _demo(args: argparse.Namespace) -> int:
    from .demo import main

    return main(
        pages=args.pages,
        kill_after=args.kill_after,
        delay=args.delay,
        storage=args.storage,
        project=args.project,
        verbose=args.verbose,
    )


def _site(args: argparse.Namespace) -> int:
    from .site import DemoSite

    with DemoSite(pages=args.pages, delay=args.delay, port=args.port, seed=args.seed) as site:
        print(f"Serving {args.pages} linked pages at {site.url}/ (Ctrl+C to stop)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return ExitCode.OK


def _events(args: argparse.Namespace) -> int:
    from .events_server import serve

    try:
        schedule = [(float(seconds), command) for seconds, command in args.at]
    except ValueError:
        print("--at takes SECONDS and a COMMAND, e.g. --at 30 'migrating 10'", file=sys.stderr)
        return ExitCode.USAGE
    tls = None
    if args.certificate or args.key:
        if not (args.certificate and args.key):
            print("wss needs both --certificate and --key", file=sys.stderr)
            return ExitCode.USAGE
        from .events_server import tls_context

        tls = tls_context(args.certificate, args.key)
    return serve(args.port, schedule, args.cpu_interval, tls)


def _inspect(args: argparse.Namespace) -> int:
    from .checkpoint_commands import inspect_command

    return inspect_command(args)


def _clear(args: argparse.Namespace) -> int:
    from .checkpoint_commands import clear_command

    return clear_command(args)


def _rehearse(args: argparse.Namespace) -> int:
    from .rehearsal import rehearse_command

    return rehearse_command(args)


def _store_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "the store",
        "Chosen as the extension chooses it: from the environment (APIFY_TOKEN, APIFY_IS_AT_HOME,"
        " ACTOR_DEFAULT_KEY_VALUE_STORE_ID, APIFY_LOCAL_STORAGE_DIR, ...) and the settings of the"
        " Scrapy project in the current directory, if any.",
    )
    group.add_argument("--store", help="auto, local, apify, or a KeyValueStore import path")
    group.add_argument("--storage-dir", help="local storage directory (default ./storage)")
    group.add_argument("--store-id", help="key-value store id (default: 'default')")
    group.add_argument(
        "-s",
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="a setting, as with scrapy crawl -s (e.g. ACTOR_EVENTS_STORE_NAME=my-store)",
    )


def build_parser() -> argparse.ArgumentParser:
    from .rehearsal import Mode

    parser = argparse.ArgumentParser(
        prog="scrapy-actor-events",
        description="Checkpoint and resume Scrapy crawls on the Apify platform.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo",
        help="crawl a local site, kill the crawl with SIGKILL, resume it, show what survived",
    )
    demo.add_argument("--pages", type=int, default=400, help="pages in the demo site (default 400)")
    demo.add_argument("--kill-after", type=int, default=150, help="requests before the kill (150)")
    demo.add_argument("--delay", type=float, default=0.01, help="seconds per response (0.01)")
    demo.add_argument("--storage", default="storage", help="local storage directory (./storage)")
    demo.add_argument("--project", help="Scrapy project to run (default: example_project/)")
    demo.add_argument("-v", "--verbose", action="store_true", help="show the whole crawl log")
    demo.set_defaults(func=_demo)

    events = commands.add_parser(
        "events",
        help="serve the Actor events socket on 127.0.0.1 and send the events you type",
        description="Serve the Actor events socket on 127.0.0.1. Run the crawl with"
        " ACTOR_EVENTS_WEBSOCKET_URL=ws://127.0.0.1:PORT, then type commands: persistState,"
        " migrating [SECONDS], aborting, cpu on|off, systemInfo, raw TEXT, binary HEX, big BYTES,"
        " close CODE, reset, refuse CODE|reset|off, status, quit.",
    )
    events.add_argument("--port", type=int, default=8010, help="port (default 8010, 0: any)")
    events.add_argument(
        "--at",
        nargs=2,
        action="append",
        default=[],
        metavar=("SECONDS", "COMMAND"),
        help="send COMMAND SECONDS after the first connection, e.g. --at 30 'migrating 10'",
    )
    events.add_argument(
        "--cpu-interval", type=float, default=1.0, help="seconds between cpuInfo events (1.0)"
    )
    events.add_argument("--certificate", help="PEM certificate: serve wss:// instead of ws://")
    events.add_argument("--key", help="PEM private key of --certificate")
    events.set_defaults(func=_events)

    inspect = commands.add_parser(
        "inspect",
        help="show what a checkpoint holds (with no KEY: the store's checkpoints)",
        description="Show what a checkpoint holds: when it was taken, how the crawl stopped,"
        " pending and in-flight requests, seen fingerprints, size, top domains and priorities,"
        " the main stats and spider.state. With no KEY: list the store's checkpoints, or"
        " inspect the only one.",
    )
    inspect.add_argument("key", nargs="?", metavar="KEY", help="the checkpoint's key")
    inspect.add_argument("--json", action="store_true", help="print JSON, for machines")
    _store_options(inspect)
    inspect.set_defaults(func=_inspect)

    clear = commands.add_parser(
        "clear", help="delete a checkpoint and its chunk records (asks first)"
    )
    clear.add_argument("key", metavar="KEY", help="the checkpoint's key")
    clear.add_argument("-y", "--yes", action="store_true", help="do not ask")
    _store_options(clear)
    clear.set_defaults(func=_clear)

    rehearse = commands.add_parser(
        "rehearse",
        help="rehearse a migration, an abort or a CPU overload on a crawl command",
        description="Serve the events socket locally, run the crawl command with"
        " ACTOR_EVENTS_WEBSOCKET_URL pointing at it, send the event, SIGKILL the crawl when the"
        " platform would, run it again on the same storage, and show what was lost.",
        usage="%(prog)s [options] -- scrapy crawl SPIDER [ARGS...]",
    )
    mode = rehearse.add_mutually_exclusive_group()
    mode.add_argument(
        "--migrate", dest="mode", action="store_const", const=Mode.MIGRATE, help="(the default)"
    )
    mode.add_argument(
        "--abort", dest="mode", action="store_const", const=Mode.ABORT, help="send aborting"
    )
    mode.add_argument(
        "--overload",
        dest="mode",
        action="store_const",
        const=Mode.OVERLOAD,
        help="send systemInfo with isCpuOverloaded for --overload-seconds",
    )
    rehearse.set_defaults(mode=Mode.MIGRATE)
    rehearse.add_argument(
        "--after", type=float, help="send the event after SECONDS (default 10)", metavar="SECONDS"
    )
    rehearse.add_argument("--after-pages", type=int, help="or after N pages", metavar="N")
    rehearse.add_argument(
        "--time-remaining", type=float, default=5.0, help="migrating: seconds to the SIGKILL (5)"
    )
    rehearse.add_argument(
        "--abort-grace", type=float, default=30.0, help="aborting: seconds to the SIGKILL (30)"
    )
    rehearse.add_argument(
        "--overload-seconds", type=float, default=10.0, help="overload: how long (10)"
    )
    rehearse.add_argument(
        "--storage", help="an empty local storage directory (default: a new temporary one)"
    )
    rehearse.add_argument(
        "--timeout", type=float, default=600.0, help="SIGKILL a run after SECONDS (600)"
    )
    rehearse.add_argument("--json", action="store_true", help="print the result as JSON")
    rehearse.add_argument("-v", "--verbose", action="store_true", help="show the crawl's log")
    rehearse.add_argument("command", nargs=argparse.REMAINDER, help="the crawl command")
    rehearse.set_defaults(func=_rehearse)

    site = commands.add_parser("site", help="serve the demo site on 127.0.0.1")
    site.add_argument("--pages", type=int, default=400)
    site.add_argument("--delay", type=float, default=0.0)
    site.add_argument("--port", type=int, default=8765)
    site.add_argument("--seed", type=int, default=7)
    site.set_defaults(func=_site)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
