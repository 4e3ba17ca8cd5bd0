"""Run the benchmarks and write docs/BENCHMARKS.md.

    python -m bench.run            # everything
    python -m bench.run codec      # one section

Not part of the test suite: speed targets live here, measured in one run with interleaved rounds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys

from . import checkpoint_bench, codec_bench, dataset_bench, peer_sections, store_bench
from .common import REPORT, git_revision, machine, versions

HEADER = (
    "# Benchmarks\n\nWritten by `python -m bench.run`; each section says when, where and how it"
    " was measured.\n"
)

SECTIONS = {
    "codec": (
        "Request codec",
        lambda args: codec_bench.report(
            codec_bench.run(args.requests, args.rounds), args.requests, args.rounds
        ),
    ),
    "store": (
        "Reactor stalls during a 50 MB checkpoint",
        lambda args: store_bench.report(
            store_bench.run(args.megabytes, args.store_rounds), args.megabytes, args.store_rounds
        ),
    ),
    "checkpoint": (
        "Checkpoint and restore cost at 10k, 100k and 1M pending requests",
        lambda args: checkpoint_bench.report(
            checkpoint_bench.run(args.sizes, args.checkpoint_rounds), args.checkpoint_rounds
        ),
    ),
    "dataset": (
        "Items to the dataset: throughput and platform requests",
        lambda args: dataset_bench.report(
            dataset_bench.run(args.dataset_pages, args.dataset_rounds, args.dataset_interval),
            args.dataset_rounds,
        ),
    ),
}
SECTIONS.update(peer_sections.SECTIONS)


def write_section(name: str, title: str, body: str, command: str) -> None:
    REPORT.parent.mkdir(exist_ok=True)
    text = REPORT.read_text() if REPORT.exists() else HEADER
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"<!-- section:{name} -->\n## {title}\n\n"
        f"Measured {stamp} at commit {git_revision()} on {machine()}; {versions()}.\n"
        f"Command: `{command}`\n\n{body}\n<!-- end:{name} -->\n"
    )
    pattern = re.compile(rf"<!-- section:{name} -->.*?<!-- end:{name} -->\n", re.S)
    text = (
        pattern.sub(lambda _: section, text)
        if pattern.search(text)
        else text.rstrip("\n") + "\n\n" + section
    )
    REPORT.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "sections", nargs="*", help=f"sections to run: {', '.join(SECTIONS)} (default: all)"
    )
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--megabytes", type=int, default=50, help="checkpoint size (store)")
    parser.add_argument("--store-rounds", type=int, default=5)
    parser.add_argument(
        "--sizes",
        type=lambda v: tuple(int(n) for n in v.split(",")),
        default=checkpoint_bench.SIZES,
        help="pending requests per frontier (checkpoint), comma-separated",
    )
    parser.add_argument("--checkpoint-rounds", type=int, default=5)
    parser.add_argument("--dataset-pages", type=int, default=3_000, help="site size (dataset)")
    parser.add_argument("--dataset-rounds", type=int, default=3)
    parser.add_argument(
        "--dataset-interval", type=float, default=5.0, help="persist interval, s (dataset)"
    )
    peer_sections.add_arguments(parser)
    args = parser.parse_args(argv)
    chosen = args.sections or list(SECTIONS)
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    command = "python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:])
    for name in chosen:
        title, func = SECTIONS[name]
        print(f"running {name}...", flush=True)
        body = func(args)
        print(body)
        write_section(name, title, body, command.strip())
    print(f"written to {REPORT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
