"""Projective geometric algebra G(3,0,1) as pure functions on (..., 16) tensors (no nn.Module here).

blades (component order, grades) → tables (generated from blade rules) → products, invariants,
embeddings, the distance features and the equivariant linear basis.
"""

from study.models.gatr.primitives.blades import (BLADES, E012, E013, E023, E123, E0123, GRADES, INDEX,
                                                 METRIC, NON_E0, blade_product)
from study.models.gatr.primitives.distance import distance_key, distance_query
from study.models.gatr.primitives.embedding import (embed_direction, embed_point, embed_scalar,
                                                    extract_point, trivector_direction, trivector_weight)
from study.models.gatr.primitives.invariants import inner_product, non_e0_mask
from study.models.gatr.primitives.linear_basis import BASIS_MAPS, linear_basis
from study.models.gatr.primitives.products import (bilinear, dual, equi_join, geometric_product,
                                                   grade_involution, join, outer_product, reverse)
from study.models.gatr.primitives.tables import bilinear_terms, table

__all__ = [
    "BASIS_MAPS", "BLADES", "E012", "E013", "E023", "E123", "E0123", "GRADES", "INDEX", "METRIC", "NON_E0",
    "bilinear", "bilinear_terms", "blade_product", "distance_key", "distance_query", "dual",
    "embed_direction", "embed_point", "embed_scalar", "equi_join", "extract_point", "geometric_product", "grade_involution", "inner_product", "join",
    "linear_basis", "non_e0_mask", "outer_product", "reverse", "table", "trivector_direction",
    "trivector_weight",
]
