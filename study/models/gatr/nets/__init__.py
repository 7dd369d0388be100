"""The GATr network, its embedding of a rigid-body scene and the family API the registry reads."""

from study.models.gatr.nets.family import (DEFAULT_SHAPE, EQUIVARIANT, GRANULARITY, MINIMUM, SHAPE_PARAMS,
                                           backward_flops, build, forward_flops, idealised_training_flops,
                                           param_count, validate)
from study.models.gatr.nets.gatr import GATr, heads_for
from study.models.gatr.nets.scene import chirality, embed_scene, join_reference, predicted_positions

__all__ = ["DEFAULT_SHAPE", "EQUIVARIANT", "GATr", "GRANULARITY", "MINIMUM", "SHAPE_PARAMS",
           "backward_flops", "build", "chirality", "embed_scene", "forward_flops", "heads_for",
           "idealised_training_flops", "join_reference", "param_count", "predicted_positions", "validate"]
