"""GATr under torch.compile: a compiled GATr traces as one graph whose outputs and gradients are eager's. (The
out-of-place forms it traces are checked against the layers' equations in test_gatr_values.py, path "traced".)"""

import torch

from study.models import build_model


def test_compiled_gatr_is_one_graph_with_eager_values_and_gradients(batch64):
    """fullgraph: no graph break anywhere in the network (a break inside the kernels' Functions is where AOT
    autograd's alias replay failed); aot_eager traces forward and backward as inductor does, without codegen."""
    torch.manual_seed(7)
    model = build_model("gatr", mv_channels=2, s_channels=4, depth=1).double()
    inputs = tuple(x[:4] for x in batch64)
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    y = compiled(*inputs)
    y.square().mean().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    y_eager = model(*inputs)
    y_eager.square().mean().backward()
    torch.testing.assert_close(y, y_eager, rtol=1e-10, atol=1e-10)
    for name, (g, p) in zip([n for n, _ in model.named_parameters()], zip(grads, model.parameters())):
        torch.testing.assert_close(g, p.grad, rtol=1e-9, atol=1e-12, msg=lambda m: f"{name}: {m}")


def test_the_traced_forms_execute_the_same_flops_as_the_kernels(batch32, monkeypatch):
    """A compiled trial spends the budget its plan counts: torch.utils.flop_counter sees the same matmul FLOPs
    (forward and backward) on the path torch.compile traces as on the eager kernels."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    model = build_model("gatr", mv_channels=3, s_channels=6, depth=2)
    inputs = tuple(x[:4] for x in batch32)

    def flops():
        with FlopCounterMode(display=False) as counter:
            model(*inputs).square().mean().backward()
        return counter.get_total_flops()

    eager = flops()
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert flops() == eager > 0
