"""Stacked twins of the parameterised modules: R replicates of one network run as one, through the batch dimension.

A stacked network is the family's own module tree in which every module that holds parameters is replaced by
a twin whose tensors have a leading replicate dimension R (`stack_network`). Everything without parameters
(attention, GATr's scene embedding, layer norm without affine, the geometric bilinear kernel, residuals) runs
unchanged on a batch of R·B samples, replicate-major: samples r·B … (r+1)·B − 1 belong to replicate r. Each
twin reads its input as (R, rows, features) and multiplies replicate r's rows by replicate r's weights with one
batched product (`bmm`/`baddbmm`), so R small products become one and every parameter-free op is dispatched
once for all replicates. This needs a network that treats the samples of a batch independently (no batch
statistics), which holds for the built-in families; a family with a parameterised module of another type is
refused (`Unstackable`) and trained another way (`study.stacked`).

Twins are registered in `STACKED` by module type (exact type: a subclass may compute something else); a family
package can add its own. GATr's `EquiLinear` twin uses plain autograd, not the custom autograd function of the
single-run layer (the same products, so the same FLOPs; its in-place grade-0 gradient trick is lost).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


class Unstackable(TypeError):
    """The network holds a parameterised module without a stacked twin (or a buffer that training changes)."""


Leaf = Callable[[str], torch.Tensor]   # full parameter name -> its (R, *shape) tensor


class StackedLinear(nn.Module):
    """R `nn.Linear`s: x (R·B, …, in) -> (R·B, …, out), replicate r's rows by its weight (R, out, in)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        self.weight, self.bias = weight, bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(self.weight.shape[0], -1, x.shape[-1])          # (R, n, in)
        w = self.weight.transpose(1, 2)                                  # (R, in, out)
        y = torch.bmm(rows, w) if self.bias is None else torch.baddbmm(self.bias.unsqueeze(1), rows, w)
        return y.view(*x.shape[:-1], y.shape[-1])


class StackedLayerNorm(nn.Module):
    """R `nn.LayerNorm`s: one normalisation of all rows, then each replicate's affine."""

    def __init__(self, shape: tuple[int, ...], eps: float, weight: torch.Tensor | None, bias: torch.Tensor | None):
        super().__init__()
        self.shape, self.eps, self.weight, self.bias = tuple(shape), eps, weight, bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x, self.shape, None, None, self.eps)
        if self.weight is None and self.bias is None:
            return y
        r = (self.weight if self.weight is not None else self.bias).shape[0]
        rows = y.reshape(r, -1, *self.shape)                            # (R, n, *shape)
        if self.weight is not None:
            rows = rows * self.weight.unsqueeze(1)
        if self.bias is not None:
            rows = rows + self.bias.unsqueeze(1)
        return rows.view(x.shape)


class StackedEquiLinear(nn.Module):
    """R GATr `EquiLinear`s (study/models/gatr/layers/linear.py), both layouts, with or without the scalar path:
    the dense (16·in × 16·out) weights placed per replicate by indexing, one `bmm`, the scalar matmul added
    into grade 0."""

    def __init__(self, module: nn.Module, weight: torch.Tensor, scalar_weight: torch.Tensor | None,
                 scalar_bias: torch.Tensor | None):
        super().__init__()
        self.in_mv, self.out_mv, self.out_s = module.in_mv, module.out_mv, module.out_s
        self.in_layout, self.out_layout = module.in_layout, module.out_layout
        self.rows, self.cols, self.maps = module.rows, module.cols, module.maps
        self.weight, self.scalar_weight, self.scalar_bias = weight, scalar_weight, scalar_bias

    def dense(self) -> torch.Tensor:
        """(R, 16·in, 16·out) in this layer's layouts (the single layer's `dense` with a replicate dimension)."""
        r = self.weight.shape[0]
        values = self.weight.index_select(1, self.maps)                 # (R, 24, in, out)
        block = values.new_zeros(r, 16, 16, self.in_mv, self.out_mv)   # (R, j, i, in, out)
        block[:, self.rows, self.cols] = values
        in_dims = (3, 1) if self.in_layout == "channel" else (1, 3)
        out_dims = (4, 2) if self.out_layout == "channel" else (2, 4)
        return block.permute(0, *in_dims, *out_dims).reshape(r, 16 * self.in_mv, 16 * self.out_mv)

    def forward(self, x: torch.Tensor, s: torch.Tensor | None):
        r, c_in, c_out = self.weight.shape[0], self.in_mv, self.out_mv
        w = self.dense()                                                 # (R, 16 in, 16 out)
        # Component-major tensors stay token-innermost per replicate ((R, 16·C, n) views of (16·C, R·n)), so
        # that the bilinear kernel's slices (and their gradients) are contiguous runs of tokens.
        if self.in_layout == "channel":                                  # x (…, in, 16)
            lead = x.shape[:-2]
            rows = x.reshape(r, -1, 16 * c_in)                           # (R, n, 16 in): columns (c, j)
            x0 = rows.unflatten(-1, (c_in, 16))[..., 0]                  # (R, n, in)
        else:                                                            # x (16, in, …)
            lead = x.shape[2:]
            rows = x.reshape(16 * c_in, r, -1).transpose(0, 1).transpose(1, 2)   # (R, n, 16 in): columns (j, c)
            x0 = rows[..., :c_in]
        if self.out_layout == "channel":
            y = torch.bmm(rows, w)                                       # (R, n, 16 out)
        else:
            y = torch.bmm(w.transpose(1, 2), rows.transpose(1, 2))       # (R, 16 out, n)
        ys = None
        if self.scalar_weight is not None:
            inp = x0 if s is None else torch.cat([x0, s.reshape(r, -1, s.shape[-1])], dim=-1)
            scal = torch.baddbmm(self.scalar_bias.unsqueeze(1), inp, self.scalar_weight.transpose(1, 2))
            if self.out_layout == "channel":
                y.unflatten(-1, (c_out, 16))[..., 0].add_(scal[..., :c_out])    # grade 0 (+ scalars, biases)
            else:
                y[:, :c_out].add_(scal[..., :c_out].transpose(1, 2))
            ys = scal[..., c_out:].reshape(*lead, self.out_s)
        if self.out_layout == "channel":
            return y.reshape(*lead, c_out, 16), ys
        return y.transpose(0, 1).reshape(16, c_out, *lead), ys


def _linear(module: nn.Linear, name: str, leaf: Leaf) -> nn.Module:
    return StackedLinear(leaf(f"{name}weight"), leaf(f"{name}bias") if module.bias is not None else None)


def _layer_norm(module: nn.LayerNorm, name: str, leaf: Leaf) -> nn.Module:
    weight = leaf(f"{name}weight") if module.weight is not None else None
    bias = leaf(f"{name}bias") if module.bias is not None else None
    return StackedLayerNorm(module.normalized_shape, module.eps, weight, bias)


def _equi_linear(module: nn.Module, name: str, leaf: Leaf) -> nn.Module:
    scalar = module.scalar
    return StackedEquiLinear(module, leaf(f"{name}weight"),
                             leaf(f"{name}scalar.weight") if scalar is not None else None,
                             leaf(f"{name}scalar.bias") if scalar is not None and scalar.bias is not None else None)


STACKED: dict[type, Callable[[nn.Module, str, Leaf], nn.Module]] = {nn.Linear: _linear, nn.LayerNorm: _layer_norm}


def _register_builtins() -> None:
    from study.models.gatr.layers.linear import EquiLinear

    STACKED.setdefault(EquiLinear, _equi_linear)


def check_stackable(network: nn.Module) -> None:
    """Raise `Unstackable` naming the first module the stacked path cannot take (parameterised without a twin,
    or holding a persistent buffer: batch statistics or other state that training changes)."""
    _register_builtins()
    for name, buffer in network.named_buffers():
        owner, _, leaf = name.rpartition(".")
        module = network.get_submodule(owner) if owner else network
        if leaf not in module._non_persistent_buffers_set:
            raise Unstackable(f"{type(network).__name__}: buffer {name!r} may change in training")
    _walk(network, "", lambda module, name: module)


def stack_network(template: nn.Module, leaf: Leaf) -> nn.Module:
    """`template` (a copy of one replicate's network: it is modified) with every parameterised module replaced by
    its stacked twin reading its tensors from `leaf(full parameter name)`; raises `Unstackable`."""
    check_stackable(template)
    return _walk(template, "", lambda module, name: STACKED[type(module)](module, name, leaf))


def _walk(module: nn.Module, prefix: str, convert) -> nn.Module:
    if type(module) in STACKED:
        return convert(module, prefix)
    if any(True for _ in module.parameters(recurse=False)):
        raise Unstackable(f"{type(module).__name__} at {prefix.rstrip('.') or 'the root'} holds parameters "
                          f"and has no stacked twin (study.stacked_modules.STACKED)")
    for name, child in list(module.named_children()):
        setattr(module, name, _walk(child, f"{prefix}{name}.", convert))
    return module
