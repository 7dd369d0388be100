"""CLI subcommands that run and inspect studies."""
