"""``equivrepair report RESULTS... --html OUT`` (or ``--markdown OUT``): tables and plots of results."""

from __future__ import annotations

import argparse
import sys

EXAMPLE = """RESULTS: any mix of files and folders; each file's kind is detected:
  campaign stores (.sqlite)               `equivrepair campaign ... --db`
  verification results (.json)            `equivrepair verify ... --json`
  certificates (.json, .json.gz)          `equivrepair verify ... --certificate`
  repair reports (.json)                  `equivrepair repair ... --report`: one run per --alpha
  repair round logs (run.json+log.jsonl)  the --log-dir of a repair, e.g. one cut off before its report
Folders are searched recursively; network metadata and input boxes are skipped quietly, anything
else unreadable is listed in the report. Results for the same (ORIG, COMP) file names share a section.

examples:
  equivrepair report results.sqlite --html report.html
  equivrepair report out/ rep.json --markdown report.md      # PNGs go to report_files/
  equivrepair report rep.onnx.repairlog verify.json --html repair.html

Per network pair: the discrepancy interval of every output (plot and table), the witness, the 2-D
projection of the reachable discrepancy set when star enumeration kept it (campaigns store it for
--method star-enum), and for repair runs the curves per round (discrepancy bound and witness per α,
validation accuracy) with a table per run and the round records."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="HTML or Markdown report (tables and plots) of verification and repair results",
        description="Write a report of results: per network pair the discrepancy intervals, the witness, the "
        "reachable-set projection and the repair curves.\n\n" + EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("results", nargs="+", help="result files or folders")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--html", metavar="OUT.html", help="self-contained HTML file (images inline)")
    out.add_argument("--markdown", "--md", metavar="OUT.md", help="Markdown file with PNGs in OUT_files/")
    p.add_argument("--title", default="equivrepair report", help="report title")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import FormatError
    from ..report import build_report, load_results, write_report

    entries, problems = load_results(args.results)
    for pr in problems:
        print(f"equivrepair report: warning: {pr}", file=sys.stderr)
    if not entries:
        raise FormatError("no results found in " + ", ".join(args.results))
    rep = build_report(entries, problems, title=args.title)
    path = write_report(rep, args.html or args.markdown, "html" if args.html else "md")
    n_pairs = len(rep["sections"])
    print(f"report with {len(entries)} results for {n_pairs} network pairs written to {path}")
    return 0
