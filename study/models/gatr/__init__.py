"""GATr, the Geometric Algebra Transformer in G(3,0,1), layered like the algebra.

primitives/ (pure functions on (…, 16) multivector tensors) → layers/ (equivariant nn.Modules and
their autograd kernels) → nets/ (the network, its embedding of a scene and the family API). This
package is the family module the registry reads: it re-exports the family API of nets/.
"""

from study.models.gatr.nets import (DEFAULT_SHAPE, EQUIVARIANT, GRANULARITY, MINIMUM, SHAPE_PARAMS, GATr,
                                    backward_flops, build, forward_flops, heads_for, idealised_training_flops,
                                    param_count, validate)

__all__ = ["DEFAULT_SHAPE", "EQUIVARIANT", "GATr", "GRANULARITY", "MINIMUM", "SHAPE_PARAMS",
           "backward_flops", "build", "forward_flops", "heads_for", "idealised_training_flops", "param_count",
           "validate"]
