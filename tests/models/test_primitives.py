"""Algebra sanity for the G(3,0,1) primitives and the tie between multivector versors and the benchmark's transforms."""

import pytest
import torch

from study.benchmark.transforms import apply_to_points, apply_to_vectors, random_e3
from study.models.gatr import primitives as pga
from tests.models.versors import act, versors

GEN = lambda seed: torch.Generator().manual_seed(seed)  # noqa: E731


def rand_mv(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, 16, generator=GEN(seed), dtype=dtype)


def grade(x, k):
    mask = torch.tensor([g == k for g in pga.GRADES], dtype=x.dtype)
    return x * mask


def blade(*indices):
    out = torch.zeros(16, dtype=torch.float64)
    out[pga.INDEX[tuple(indices)]] = 1.0
    return out


def test_table_sizes_and_metric():
    assert int((pga.table("gp") != 0).sum()) == 192
    assert int((pga.table("outer") != 0).sum()) == 81
    e0, e1, e2, e3 = (blade(i) for i in range(4))
    one = blade()
    assert torch.equal(pga.geometric_product(e0, e0), torch.zeros(16, dtype=torch.float64))
    for e in (e1, e2, e3):
        assert torch.equal(pga.geometric_product(e, e), one)
    # distinct basis vectors anticommute and multiply to the bivector blade
    assert torch.equal(pga.geometric_product(e1, e2), blade(1, 2))
    assert torch.equal(pga.geometric_product(e2, e1), -blade(1, 2))
    assert torch.equal(pga.geometric_product(e0, e3), blade(0, 3))


def test_geometric_product_is_associative_and_bilinear():
    x, y, z = rand_mv(5, seed=1), rand_mv(5, seed=2), rand_mv(5, seed=3)
    gp = pga.geometric_product
    torch.testing.assert_close(gp(gp(x, y), z), gp(x, gp(y, z)), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gp(x, 2 * y + z), 2 * gp(x, y) + gp(x, z), rtol=1e-12, atol=1e-12)


def test_outer_product_is_grade_sum_part_of_geometric_product():
    x, y = rand_mv(4, seed=4), rand_mv(4, seed=5)
    expected = torch.zeros_like(x)
    for a in range(5):
        for b in range(5 - a):
            expected += grade(pga.geometric_product(grade(x, a), grade(y, b)), a + b)
    torch.testing.assert_close(pga.outer_product(x, y), expected, rtol=1e-12, atol=1e-12)
    v = grade(x, 1)
    assert torch.allclose(pga.outer_product(v, v), torch.zeros_like(v), atol=1e-12)


def test_dual_and_join_identities():
    for i, b in enumerate(pga.BLADES):
        e = torch.zeros(16, dtype=torch.float64)
        e[i] = 1.0
        assert torch.equal(pga.outer_product(e, pga.dual(e)), blade(0, 1, 2, 3))  # e ∧ dual e = I
    x = rand_mv(3, seed=6)
    I = blade(0, 1, 2, 3)
    torch.testing.assert_close(pga.join(x, I), x)  # the pseudoscalar is the join's unit
    torch.testing.assert_close(pga.join(I, x), x)
    p = torch.randn(4, 3, generator=GEN(7), dtype=torch.float64)
    P = pga.embed_point(p)
    assert torch.allclose(pga.join(P[0], P[0]), torch.zeros(16, dtype=torch.float64))
    line = pga.join(P[0], P[1])
    plane = pga.join(line, P[2])
    assert [pga.GRADES[i] for i in line.nonzero().flatten()] == [2] * len(line.nonzero())
    assert set(pga.GRADES[i] for i in plane.nonzero().flatten()) == {1}
    for k in range(3):  # the plane through three points contains each of them: plane ∧ point = 0
        assert torch.allclose(pga.outer_product(plane, P[k]), torch.zeros(16, dtype=torch.float64), atol=1e-12)
    assert pga.outer_product(plane, P[3]).abs().max() > 1e-3
    # plane ∨ fourth point = det of the edge vectors (6 × tetrahedron volume), up to sign
    volume = torch.linalg.det(p[1:] - p[0]).item()
    assert abs(abs(pga.join(plane, P[3])[0].item()) - abs(volume)) < 1e-10


def test_inner_product_is_scalar_part_of_reverse_product():
    x, y = rand_mv(6, seed=8), rand_mv(6, seed=9)
    expected = pga.geometric_product(pga.reverse(x), y)[..., 0]
    torch.testing.assert_close(pga.inner_product(x, y), expected)


def test_point_embedding_round_trip_and_guard():
    p = torch.randn(10, 3, generator=GEN(10), dtype=torch.float64)
    torch.testing.assert_close(pga.extract_point(pga.embed_point(p)), p)
    torch.testing.assert_close(pga.extract_point(-2.5 * pga.embed_point(p)), p)  # projective
    assert torch.isfinite(pga.extract_point(pga.embed_direction(p))).all()


@pytest.mark.parametrize("reflection_prob", [0.0, 1.0])
def test_versor_action_matches_benchmark_transforms(reflection_prob):
    R, t = random_e3(6, generator=GEN(11), dtype=torch.float64, reflection_prob=reflection_prob)
    p = torch.randn(6, 5, 3, generator=GEN(12), dtype=torch.float64)
    u, odd = versors(R, t)
    assert torch.equal(odd, torch.linalg.det(R) < 0)
    det = torch.linalg.det(R).view(6, 1, 1)
    # points and directions are pseudo under the Pin action: equal up to the sign det(R)
    got = act(u[:, None], pga.embed_point(p), odd)
    torch.testing.assert_close(got, det * pga.embed_point(apply_to_points(R, t, p)))
    got = act(u[:, None], pga.embed_direction(p), odd)
    torch.testing.assert_close(got, det * pga.embed_direction(apply_to_vectors(R, p)))
    torch.testing.assert_close(pga.extract_point(act(u[:, None], pga.embed_point(p), odd)),
                               apply_to_points(R, t, p))


def test_action_is_a_group_action():
    R, t = random_e3(2, generator=GEN(13), dtype=torch.float64)
    (u1, u2), odd = versors(R, t)
    x = rand_mv(3, seed=14)
    composed = act(pga.geometric_product(u1, u2), x, bool(odd[0] ^ odd[1]))
    torch.testing.assert_close(composed, act(u1, act(u2, x, bool(odd[1])), bool(odd[0])))


def _rel(a, b):
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_primitives_are_equivariant(dtype, tol):
    R, t = random_e3(8, generator=GEN(15), dtype=torch.float64)
    u, odd = versors(R, t)
    u = u[:, None]
    g = lambda x: act(u, x.double(), odd)  # noqa: E731  (the action in float64)
    x, y, ref = rand_mv(8, 5, seed=16), rand_mv(8, 5, seed=17), rand_mv(8, 1, seed=18)
    xd, yd, rd = x.to(dtype), y.to(dtype), ref.to(dtype)
    gx, gy, gr = g(x).to(dtype), g(y).to(dtype), g(ref).to(dtype)
    cases = {
        "geometric product": (pga.geometric_product(gx, gy), g(pga.geometric_product(xd, yd))),
        "outer product": (pga.outer_product(gx, gy), g(pga.outer_product(xd, yd))),
        "join with reference": (pga.equi_join(gx, gy, gr), g(pga.equi_join(xd, yd, rd))),
        "inner product": (pga.inner_product(gx, gy), pga.inner_product(xd, yd).double()),
    }
    for a, basis in enumerate(pga.linear_basis(dtype=dtype)):
        cases[f"basis map {a}"] = (gx @ basis.T, g(xd @ basis.T))
    for name, (actual, expected) in cases.items():
        assert _rel(actual.double(), expected) <= tol, name


def test_join_without_reference_is_only_pseudo_equivariant():
    R, t = random_e3(4, generator=GEN(19), dtype=torch.float64, reflection_prob=1.0)
    u, odd = versors(R, t)
    u = u[:, None]
    x, y = rand_mv(4, 3, seed=20), rand_mv(4, 3, seed=21)
    actual = pga.join(act(u, x, odd), act(u, y, odd))
    expected = act(u, pga.join(x, y), odd)
    assert _rel(actual, expected) > 1.0              # sign flipped under reflections
    assert _rel(actual, -expected) < 1e-12
