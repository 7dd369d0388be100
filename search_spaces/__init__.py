"""Budget-constrained define-by-run search spaces, one module per family."""
