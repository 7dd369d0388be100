"""Compute-optimal allocation under a family's FLOP model C(N, D) = K · N^(1+κ) · D.

Training FLOPs are C = 3 · F_fwd · D, and F_fwd is not exactly 2N (attention, GATr's products), so
the FLOPs per parameter-sample k = C/(N·D) drifts with size. We model it as k(N) = K · N^κ, fitted
by least squares of log k on log N over the family's trials (κ = 0, K = 6 for C = 6ND). Minimising
L = E + A/N^α + B/D^β on C = K N^(1+κ) D gives the closed form
    N_opt = (αA / (β(1+κ)B))^(1/(α+β(1+κ))) · (C/K)^(β/(α+β(1+κ))),   D_opt = C / (K N_opt^(1+κ)),
i.e. N_opt ∝ C^a, D_opt ∝ C^b with a = β/(α+β(1+κ)), b = α/(α+β(1+κ)) (Hoffmann's G, a, b at κ = 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from study.errors import EquiscaleError


@dataclass(frozen=True)
class FlopsModel:
    """Training FLOPs C = K · N^(1+κ) · D (K = 6, κ = 0 is the usual 6ND)."""

    K: float = 6.0
    kappa: float = 0.0

    def flops(self, n, d):
        return self.K * np.asarray(n, float) ** (1.0 + self.kappa) * np.asarray(d, float)

    def samples(self, n, c):
        """Samples D that spend budget c at size n."""
        return np.asarray(c, float) / (self.K * np.asarray(n, float) ** (1.0 + self.kappa))

    @classmethod
    def from_runs(cls, n, d, flops) -> "FlopsModel":
        """Fit log(C/(N·D)) = log K + κ log N; κ = 0 (median k) when N spans less than 1.5×."""
        n, d, flops = (np.asarray(v, float) for v in (n, d, flops))
        ok = (n > 0) & (d > 0) & (flops > 0) & np.isfinite(n) & np.isfinite(d) & np.isfinite(flops)
        if not ok.any():
            raise EquiscaleError("no run with positive N, D and flops_used to estimate the FLOP model")
        logn, logk = np.log(n[ok]), np.log(flops[ok] / (n[ok] * d[ok]))
        if np.ptp(logn) < np.log(1.5):
            return cls(K=float(np.exp(np.median(logk))), kappa=0.0)
        kappa, log_k0 = np.polyfit(logn, logk, 1)
        return cls(K=float(np.exp(log_k0)), kappa=float(kappa))


def _check(alpha, beta, model: FlopsModel):
    if not (np.all(np.asarray(alpha) > 0) and np.all(np.asarray(beta) > 0)):
        raise EquiscaleError("the fitted exponents α and β must be positive to allocate compute")
    if model.kappa <= -1:
        raise EquiscaleError(f"FLOP model exponent κ = {model.kappa:.3g} must exceed -1")


def allocation_exponents(alpha, beta, model: FlopsModel = FlopsModel()):
    """(a, b): N_opt ∝ C^a and D_opt ∝ C^b for the parametric law under the FLOP model."""
    alpha, beta = np.asarray(alpha, float), np.asarray(beta, float)
    denom = alpha + beta * (1.0 + model.kappa)
    return beta / denom, alpha / denom


def optimal_allocation(c, *, A, B, alpha, beta, model: FlopsModel = FlopsModel()):
    """(N_opt, D_opt) minimising E + A/N^α + B/D^β at training compute c (broadcasts)."""
    _check(alpha, beta, model)
    c = np.asarray(c, float)
    alpha, beta, A, B = (np.asarray(v, float) for v in (alpha, beta, A, B))
    p = 1.0 + model.kappa
    denom = alpha + beta * p
    with np.errstate(divide="ignore", invalid="ignore"):  # a degenerate fit (α or β = 0) gives inf/nan, shown as such
        log_n = (np.log(alpha * A / (beta * p * B)) + beta * np.log(c / model.K)) / denom
        n_opt = np.exp(log_n)
        return n_opt, model.samples(n_opt, c)
