"""Basis blades of G(3,0,1): their order in a (..., 16) multivector, grades, and blade products.

Components: 1, e0, e1, e2, e3, e01, e02, e03, e12, e13, e23, e012, e013, e023, e123, e0123;
e0² = 0, e1² = e2² = e3² = 1.
"""

from __future__ import annotations

from itertools import combinations

METRIC = (0.0, 1.0, 1.0, 1.0)
BLADES: tuple[tuple[int, ...], ...] = tuple(
    blade for grade in range(5) for blade in combinations(range(4), grade)
)
GRADES = tuple(len(b) for b in BLADES)
INDEX = {blade: i for i, blade in enumerate(BLADES)}
NON_E0 = tuple(i for i, b in enumerate(BLADES) if 0 not in b)  # 1, e1, e2, e3, e12, e13, e23, e123
E012, E013, E023, E123, E0123 = (INDEX[b] for b in [(0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3), (0, 1, 2, 3)])


def blade_product(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[float, tuple[int, ...]]:
    """e_a e_b = sign · e_c: sort the concatenated indices counting swaps, contract repeats with the metric."""
    idx, sign = list(a + b), 1.0
    for i in range(len(idx)):  # bubble sort: each swap of distinct basis vectors flips the sign
        for j in range(len(idx) - 1 - i):
            if idx[j] > idx[j + 1]:
                idx[j], idx[j + 1] = idx[j + 1], idx[j]
                sign = -sign
    out: list[int] = []
    for v in idx:
        if out and out[-1] == v:
            out.pop()
            sign *= METRIC[v]
        else:
            out.append(v)
    return sign, tuple(out)
