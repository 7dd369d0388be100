"""`equiscale plot`: loss vs compute, IsoFLOP curves and N_opt/D_opt vs C (PNG and SVG)."""

from __future__ import annotations

import sys

from analysis import axes as X
from analysis.laws import bracket_text
from analysis.plots import save_all
from study.commands.fit import add_data_arguments, fit_from_args, report_exclusions
from study import schema
from study.errors import EquiscaleError
from study.output import check_output_dir


def add_arguments(parser) -> None:
    parser.add_argument("--out", default="figures", metavar="DIR", help="output folder (default ./figures)")
    parser.add_argument("--loss-label", default=None, metavar="TEXT",
                        help="y-axis label for the loss (default: 'validation loss [MSE, m²]' for a storage)")
    add_data_arguments(parser)


def main(args) -> int:
    check_output_dir(args.out)
    result = fit_from_args(args)
    report_exclusions(result)
    if args.loss_label:
        label = args.loss_label
    elif args.from_csv:
        label = f"loss ({args.loss_column})"
    else:
        label = f"{'validation' if args.loss == schema.VAL_LOSS else 'test'} loss [MSE, m²]"
    try:
        files = save_all(result.points_frame(), result.laws, args.out, loss_label=label,
                         compute_label=X.LABEL[result.runs.axis])
    except OSError as exc:
        raise EquiscaleError(f"cannot write figures to {args.out}: {exc}") from None
    for path in files:
        print(path)
    print(bracket_text(result.laws), file=sys.stderr)   # the rule behind the IsoFLOP panels
    return 0
