"""`equiscale export`: the compute-optimal allocation table per family and budget."""

from __future__ import annotations

from analysis.export import FORMATS, allocation_table, parse_budgets, render
from study.commands.fit import add_data_arguments, fit_from_args, report_exclusions
from study.errors import EquiscaleError
from study.output import check_output_file, write_text


def add_arguments(parser) -> None:
    parser.add_argument("--budgets", required=True, metavar="C1,C2,…",
                        help="training-FLOP budgets to allocate, comma-separated (e.g. 1e13,1e14)")
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
    result = fit_from_args(args, approaches=chosen)
    report_exclusions(result)
    text = render(allocation_table(result.laws, budgets, approaches=chosen), args.format)
    if args.out:
        write_text(args.out, text)
    else:
        print(text, end="")
    return 0
