"""Analysis of study runs: Chinchilla-style laws, allocation tables and figures.

Modules (one concept each):
  trials      storage / CSV -> `Runs` (COMPLETE trials within 1% of their budget; exclusions counted)
  power       L(C) through the best run per budget (with/without irreducible term), loss ratios
  isoflop     Approach 2: parabola in ln N near each budget's minimum (±0.5 decades of N around the best
              run by default) -> N_opt, D_opt, L_opt; power laws in C
  parametric  Approach 3: L = E + A/N^α + B/D^β, Huber(δ=1e-3) on log L, L-BFGS + analytic gradients
  allocation  FLOP model C = K·N^(1+κ)·D (fitted per family) and the closed-form optimal N, D
  bootstrap   resampling runs, percentile intervals (or why there is none), batched parametric refits
  points      replicates (same shape and lr, stored seeds) averaged into points; the hierarchical bootstrap
              (points within budgets, seeds within points) behind every interval of the compute laws
  replicates  seed spread per family and budget; lr_opt per budget, lr_opt ∝ C^γ, the lr-inside-range check
  laws        all of the above for one family (`fit_family` -> `FamilyLaws`)
  export      allocation tables (csv, md, tex, json);  plots: figures (PNG + SVG)
  api         the library entry point: `load_runs(...)`, `fit_study(runs, ...) -> StudyFit`
  data_efficiency  data studies (`data/<family>/<size>[/<steps>]`): L(n) = coef·n^(−α) with intervals, gap vs epochs
  lengths     claim 1 by training length: best lr per (family, size, length) with the lr-inside check, ratios per
              (size, length) from seeds resampled within lr points, slope of log ratio vs log steps
  ratios      best-loss ratio of two families per budget or size, with bootstrap intervals
  heldout     L(C) fitted without the largest budget, checked against that budget's best loss
  report      the report's content and claim verdicts (`build_report`); document: Markdown/HTML blocks

CLI: `equiscale fit|export|plot|report` (study/commands, thin wrappers around analysis.api and analysis.report). CSV input:
`--from-csv FILE --n-column N --loss-column L` plus `--d-column D` or `--c-column C` (then D = C / (k·N), k =
`--flops-per-param-sample`, default 6). `fit --json` prints {"families": {name: {...}}} and, for a
single family, its `E, A, B, alpha, beta, a, b` at the top level, each {"value", "ci": [low, high]}, or value and ci
null with "not_identified": why.
"""
