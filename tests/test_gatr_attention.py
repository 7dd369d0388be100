"""benchmarks/gatr_attention.py: the trivector weights it reads out of attention's features are the queries' and
keys' own e123 components, computed here from the network's layers directly."""

from __future__ import annotations

import tempfile

import torch

from study.benchmark import load_dataset
from study.benchmark.format import MARKERS, PROPS
from study.models.gatr import GATr
from study.models.gatr.layers import equi_layer_norm
from study.models.gatr.nets import chirality, embed_scene
from study.models.gatr.primitives import E123
from tests.scripts import load_benchmark


def test_diagnose_reads_the_rms_trivector_weight_of_the_first_blocks_queries_and_keys():
    with tempfile.TemporaryDirectory() as tmp:
        split = load_dataset(scenes=16, bodies=4, seed=0, cache_dir=tmp).train[:8]
    torch.manual_seed(4)
    model = GATr(mv_channels=2, s_channels=4, depth=2, markers=MARKERS, props=PROPS)
    _, _, _, blocks = load_benchmark("gatr_attention").diagnose(model, split, per_head=2)
    with torch.no_grad():
        x, s = model.embed(embed_scene(split.pos0, split.vel0, chirality(split.pos0)), split.props)
        qkv, _ = model.blocks[0].attention.qkv(*equi_layer_norm(x, s))      # (B, K, 3C, 16)
    w_q, w_k = qkv[..., :2, E123], qkv[..., 2:4, E123]                       # (B, K, C) each
    assert len(blocks) == 2 and len(blocks[0]) == 5
    assert abs(blocks[0][3] - float(w_q.square().mean().sqrt())) < 1e-5
    assert abs(blocks[0][4] - float(w_k.square().mean().sqrt())) < 1e-5
    assert abs(blocks[0][3] - blocks[0][4]) > 1e-3   # queries and keys differ: the check tells them apart
