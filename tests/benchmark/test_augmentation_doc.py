"""The numbers the README (and the data study file's header) give for the data's distribution and the augmentation
are the code's: each is read from the text and compared with the constant it documents, or recomputed."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from study.benchmark import scenes, transforms
from study.benchmark.config import BenchmarkConfig

ROOT = Path(__file__).resolve().parents[2]


def section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("#### The data and the augmentation, in numbers")
    return text[start:text.index("\n### ", start)]


def header() -> str:
    """The file's leading comment as one line of text."""
    return " ".join(line.lstrip("#").strip() for line in (ROOT / "studies/data.toml").read_text().splitlines()
                    if line.startswith("#"))


def number(pattern: str, text: str) -> tuple[float, ...]:
    match = re.search(pattern, text)
    assert match, f"not found: {pattern}"
    return tuple(float(g) for g in match.groups())


RANGE = r"([\d.]+)\s*[–-]\s*([\d.]+)"
SQUARE = r"(?:²|\^2)"


@pytest.mark.parametrize("text", [section(), header()], ids=["README", "studies/data.toml"])
def test_the_documented_distribution_and_augmentation_are_the_codes(text):
    assert number(r"ball of radius ([\d.]+)", text) == (scenes.PLACEMENT_RADIUS,)
    assert number(r"half-extents " + RANGE, text) == scenes.HALF_EXTENT
    assert number(r"aimed[^\n]*?N\(0, ([\d.]+)" + SQUARE + r"\)", text) == (scenes.AIM_SPREAD,)
    assert number(r"arriving\s+in\s+" + RANGE + r" s", text) == scenes.ARRIVAL_TIME
    assert number(r"reflection with probability ([\d.]+)", text) == (transforms.REFLECTION_PROB,)
    assert number(r"translation[^\n]*?N\(0, ([\d.]+)" + SQUARE + r"\) per axis", text) == (transforms.TRANSLATION_SCALE,)


def test_the_readme_rows_that_only_it_gives():
    text = section()
    assert number(r"capsules: radius " + RANGE, text) == scenes.CAPSULE_RADIUS
    assert number(r"half-length " + RANGE, text) == scenes.CAPSULE_HALF_LENGTH
    assert number(r"density " + RANGE, text) == scenes.DENSITY
    assert "spin uniform up to 2π rad/s" in text and scenes.MAX_SPIN == pytest.approx(2 * math.pi)
    assert number(r"horizon \| ([\d.]+) s \(MuJoCo steps of ([\d.]+) s\)", text) == (BenchmarkConfig().horizon,
                                                                                      BenchmarkConfig().dt)
    # the mean speed, from scenes sampled by the code
    sampled = scenes.sample_scenes(np.random.default_rng(0), 4000, 4)
    assert number(r"speed ([\d.]+) m/s on average", text)[0] == pytest.approx(
        np.linalg.norm(sampled.vel, axis=-1).mean(), abs=0.05)
    # a translation's mean length, computed from the transform's draws: 1.6 = 2 x the placement radius
    _, t = transforms.random_e3(20000, generator=torch.Generator().manual_seed(0))
    mean_length = float(t.double().norm(dim=1).mean())
    assert number(r"([\d.]+) long on average", text)[0] == pytest.approx(mean_length, abs=0.05)
    assert mean_length == pytest.approx(2 * scenes.PLACEMENT_RADIUS, rel=0.05)
