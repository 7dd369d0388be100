"""CLI subcommands of the analysis."""
