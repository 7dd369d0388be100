"""Equivariant layers on (…, C, 16) multivector and (…, S) scalar channels (nn.Modules and their kernels)."""

from study.models.gatr.layers.attention import Attention
from study.models.gatr.layers.bilinear_kernel import GatedBilinear, gated_bilinear
from study.models.gatr.layers.block import Block
from study.models.gatr.layers.linear import EquiLinear, EquiLinearFunction
from study.models.gatr.layers.mlp import GeometricMLP
from study.models.gatr.layers.norm import EPS, equi_layer_norm

__all__ = ["Attention", "Block", "EPS", "EquiLinear", "EquiLinearFunction", "GatedBilinear",
           "GeometricMLP", "equi_layer_norm", "gated_bilinear"]
