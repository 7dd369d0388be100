"""Rigid-body interaction benchmark: MuJoCo scenes, the cached dataset, E(3) transforms."""

from study.benchmark.config import BenchmarkConfig
from study.benchmark.dataset import load_dataset
from study.benchmark.format import MARKERS, PROPS, PROPS_COLUMNS, SHAPES, Dataset, Split
from study.benchmark.memory import bytes_per_scene, check_fits_memory, dataset_bytes
from study.benchmark.transforms import apply_to_points, apply_to_vectors, random_e3, transform_batch
