"""The peer sections of docs/BENCHMARKS.md and their options, registered by bench/run.py.

Full size, as docs/BENCHMARKS.md reports them (2 cores; times of a quiet machine, roughly):

    python -m bench.run peers --peers plain,extension,jobdir --peer-rounds 5   # ~3 min
    python -m bench.run frontier --frontier 200000,1000000                     # ~25 min a round
    python -m bench.run profile --profile-rounds 3                             # ~2 min
    python -m bench.run peers kill frontier --quick  # everything small, without the Apify SDK

``frontier`` crawls plain Scrapy, the extension and JOBDIR at both sizes (and scrapy-redis at
200,000); at 1,000,000 plain Scrapy alone takes about 5 minutes and 2.6 GB. ``--peers`` picks the
contenders (``objects``: the extension with the compact frontier off, as before it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import frontier_bench, peer_bench, profile_bench

if TYPE_CHECKING:
    import argparse

QUICK = {
    "peer_rounds": 2,
    "peer_pages": 2_000,
    "kill_pages": 2_000,
    "kill_at": 1_000,
    "frontier": [50_000],
    "profile_rounds": 1,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("peers, kill, frontier")
    group.add_argument(
        "--peers",
        type=lambda text: tuple(text.split(",")),
        default=None,
        help=f"contenders, comma-separated, of {','.join(peer_bench.CONTENDERS)} (default: all"
        " but objects, the extension with the compact frontier off; --quick leaves out apify)",
    )
    group.add_argument("--peer-rounds", type=int, default=3, help="rounds of the speed run")
    group.add_argument("--peer-pages", type=int, default=2_500, help="site size, speed run")
    group.add_argument("--peer-cap", type=float, default=30.0, help="seconds per crawl at most")
    group.add_argument("--kill-rounds", type=int, default=1)
    group.add_argument("--kill-pages", type=int, default=10_000, help="site size, kill run")
    # Late enough that every contender is past its start-up, the extension past its first
    # checkpoints (a kill before the first one costs what it costs plain Scrapy: everything).
    group.add_argument("--kill-at", type=int, default=5_000, help="pages fetched before SIGKILL")
    group.add_argument(
        "--frontier",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[200_000],
        help="frontier sizes, comma-separated (1000000 takes about 10 minutes a contender)",
    )
    group.add_argument("--frontier-rounds", type=int, default=1)
    group.add_argument("--profile-rounds", type=int, default=3, help="rounds of the profile")
    group.add_argument("--frontier-hold", type=float, default=6.0)
    group.add_argument(
        "--quick", action="store_true", help="smaller sites, fewer rounds, no apify: ~5 min"
    )


def _options(args: argparse.Namespace) -> dict[str, Any]:
    options = dict(vars(args))
    if args.quick:
        options.update(QUICK)
    return options


def _contenders(
    args: argparse.Namespace, available: tuple[str, ...], default: tuple[str, ...]
) -> tuple[str, ...]:
    if args.peers:
        # One --peers serves every section of a run: each takes the contenders it knows.
        unknown = set(args.peers) - set(peer_bench.CONTENDERS)
        if unknown:
            raise SystemExit(f"unknown contender(s) {', '.join(sorted(unknown))}")
        chosen = tuple(name for name in available if name in args.peers)
    else:
        chosen = tuple(n for n in default if not (args.quick and n == "apify"))
    return chosen if "plain" in chosen else ("plain", *chosen)


def peers(args: argparse.Namespace) -> str:
    o = _options(args)
    contenders = _contenders(args, peer_bench.CONTENDERS, peer_bench.DEFAULT_CONTENDERS)
    data = peer_bench.run_throughput(
        o["peer_rounds"], o["peer_pages"], 8, o["peer_cap"], contenders
    )
    return peer_bench.report_throughput(data, o["peer_rounds"])


def kill(args: argparse.Namespace) -> str:
    o = _options(args)
    contenders = _contenders(args, peer_bench.CONTENDERS, peer_bench.DEFAULT_CONTENDERS)
    data = peer_bench.run_kill(o["kill_rounds"], o["kill_pages"], 8, o["kill_at"], contenders)
    return peer_bench.report_kill(data, o["kill_rounds"])


def frontier(args: argparse.Namespace) -> str:
    o = _options(args)
    contenders = _contenders(args, frontier_bench.CONTENDERS, frontier_bench.DEFAULT_CONTENDERS)
    data = frontier_bench.run(o["frontier"], o["frontier_rounds"], o["frontier_hold"], contenders)
    return frontier_bench.report(data, o["frontier_rounds"])


def profile(args: argparse.Namespace) -> str:
    o = _options(args)
    contenders = _contenders(args, profile_bench.CONTENDERS, ("plain", "extension"))
    data = profile_bench.run(o["profile_rounds"], o["peer_pages"], 8, contenders)
    return profile_bench.report(data, o["profile_rounds"])


SECTIONS = {
    "peers": ("Crawl speed and memory: this extension and its peers", peers),
    "profile": ("Where the extension's time per page goes", profile),
    "kill": ("What one SIGKILL costs: this extension and its peers", kill),
    "frontier": ("A large frontier: memory, and what is kept to resume", frontier),
}
