"""`equiscale status`: one row per study: trials COMPLETE/target, failed, best val loss, its epochs and shape."""

from __future__ import annotations

from study.storage import DEFAULT_STORAGE
from study.storage import check_storage, open_storage
from study.summary import format_table, study_rows


def add_arguments(parser) -> None:
    parser.add_argument("--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL (default {DEFAULT_STORAGE})")


def main(args) -> int:
    check_storage(args.storage, must_exist=True)
    print(format_table(study_rows(open_storage(args.storage, read_only=True))))
    return 0
