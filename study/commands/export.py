"""`equiscale export`: the compute-optimal allocation table per family and budget.

Every family gets a row per budget and approach; where its law is not identified the row's quantities are
'n/a' (empty in CSV/JSON) with the reason in `not_identified`, and the command exits 0, as the report does.
The predicted-loss column is named after the split the laws were fitted to (`val_loss` or `test_loss`).
"""

from __future__ import annotations

import sys

from analysis.export import FORMATS, allocation_table, parse_budgets, render
from analysis.laws import bracket_text
from study.commands.fit import add_data_arguments, fit_from_args, report_exclusions
from study.errors import EquiscaleError
from study.output import check_output_file, write_text


def add_arguments(parser) -> None:
    parser.add_argument("--budgets", required=True, metavar="C1,C2,…",
                        help="budgets to allocate, comma-separated (e.g. 1e13,1e14): compute on the --compute axis "
                             "(FLOPs, or seconds for --compute seconds)")
    parser.add_argument("--format", choices=FORMATS, default="csv", help="table format (default csv)")
    parser.add_argument("--out", metavar="FILE", help="write the table here (default: standard output)")
    add_data_arguments(parser)


def main(args) -> int:
    budgets = parse_budgets(args.budgets)
    if args.approach == "power":
        raise EquiscaleError("--approach power gives no allocation; use parametric, isoflop or all")
    if args.out:
        check_output_file(args.out)
    chosen = ("parametric", "isoflop") if args.approach == "all" else (args.approach,)
    result = fit_from_args(args, approaches=chosen, strict=False, require_fit=False)  # not identified: 'n/a' rows
    report_exclusions(result)
    loss_name = "loss" if args.from_csv else args.loss
    text = render(allocation_table(result.laws, budgets, approaches=chosen, loss_name=loss_name), args.format)
    if args.out:
        write_text(args.out, text)
    else:
        print(text, end="")
    if "isoflop" in chosen:   # the rule Approach 2's rows follow (stderr, once the table is out: stdout holds it alone)
        print(bracket_text(result.laws), file=sys.stderr)
    return 0
