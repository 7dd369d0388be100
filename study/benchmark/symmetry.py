"""How E(3)-equivariant the simulator is: simulate(g·scene) against g·simulate(scene), per scene.

The transformed scene is rebuilt from its transformed markers only (`scenes_from_markers`), exactly
as a user would rebuild it from the public arrays; under a reflection its body frames are
left-handed and `Simulator` turns them into proper rotations by flipping one principal axis, which
maps every primitive onto itself. Markers are material points, so g maps markers to markers.
"""

from __future__ import annotations

import numpy as np
import torch

from study.benchmark.config import BenchmarkConfig
from study.benchmark.generate import first_scenes
from study.benchmark.scenes import markers, props, scenes_from_markers
from study.benchmark.simulate import Simulator
from study.benchmark.transforms import apply_to_points, apply_to_vectors, random_e3


def equivariance_errors(
    config: BenchmarkConfig, *, scenes: int, seed: int = 0, threads: int = 1,
    reflection_prob: float = 0.5, translation_scale: float = 1.0,
) -> dict[str, np.ndarray]:
    """Relative errors (scenes,) of the first `scenes` scenes of `config` under random E(3) elements.

    error = ||simulate(g x) - g simulate(x)|| / ||simulate(x) - x|| over all markers of a scene (the
    displacement norm, so a translation cannot make the error look small). Also returns `reflected`
    (which elements had det -1) and `contact`."""
    base = first_scenes(config, scenes)
    simulator = Simulator(config.bodies, dt=config.dt, steps=config.steps, threads=threads)
    try:
        outcome = simulator.run(base)
        pos0, vel0 = markers(base)                                       # (S, K, M, 3)
        posT = outcome.markers(base.size)
        gen = torch.Generator().manual_seed(seed)
        R, t = random_e3(scenes, generator=gen, dtype=torch.float64, reflection_prob=reflection_prob,
                         translation_scale=translation_scale)
        g_pos0 = apply_to_points(R, t, torch.from_numpy(pos0)).numpy()
        g_vel0 = apply_to_vectors(R, torch.from_numpy(vel0)).numpy()
        g_posT = apply_to_points(R, t, torch.from_numpy(posT)).numpy()
        moved = scenes_from_markers(g_pos0, g_vel0, props(base))
        got = simulator.run(moved).markers(moved.size)
    finally:
        simulator.close()
    error = np.linalg.norm((got - g_posT).reshape(scenes, -1), axis=-1)
    scale = np.linalg.norm((posT - pos0).reshape(scenes, -1), axis=-1)
    return {"error": error / scale, "reflected": (torch.linalg.det(R) < 0).numpy(),
            "contact": outcome.contact}
