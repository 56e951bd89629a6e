"""`python -m tests.bench [--quick]`: the benchmark against the SDK's floor; prints a table, writes JSON.

    .venv/bin/python -m tests.bench --quick     # about 3 minutes
    .venv/bin/python -m tests.bench             # the full run, under 10 minutes

Needs PostgreSQL on 127.0.0.1:5432 (user postgres; BENCH_PG_URL or TEST_DATABASE_URL to change it) for the
PostgreSQL, worker and broadcast sections; without it they are reported as skipped. Figures only: nothing here
passes or fails on a time.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tests.bench.report import markdown, render
from tests.bench.runner import SECTIONS, Run
from tests.bench.servers import PROJECT_ROOT

DEFAULT_OUT = PROJECT_ROOT / "test-artifacts" / "bench.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="short phases (about 3 minutes)")
    size.add_argument("--smoke", action="store_true", help="a few seconds of tiny loads (checks the machinery)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run (default: all of {','.join(SECTIONS)})")
    parser.add_argument("--no-postgres", action="store_true", help="skip everything that needs PostgreSQL")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (server and worker logs)")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown (for README)")
    args = parser.parse_args(argv)

    sections = tuple(s for s in args.only.split(",") if s)
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    kind = "smoke" if args.smoke else "quick" if args.quick else "full"
    run = Run(kind, sections, postgres=False if args.no_postgres else None)
    try:
        results = run.execute()
    finally:
        if args.keep:
            print(f"logs kept in {run.workdir}", file=sys.stderr)
        else:
            run.cleanup()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print()
    print(render(results))
    if args.markdown:
        print()
        print(markdown(results))
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
