"""Split and Dataset conversions (the arrays as they cross to Ray workers)."""

import numpy as np
import torch

from study.benchmark.format import ARRAYS, Dataset, Split

SHAPES = ((5, 2, 3, 3), (5, 2, 3, 3), (5, 2, 8), (5, 2, 3, 3))  # pos0, vel0, props, posT


def test_numpy_and_back_share_the_memory_and_keep_the_values():
    """What crosses to Ray workers: NumPy views of the same memory (no copy), and tensors again on arrival."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(shape).astype(np.float32) for shape in SHAPES]
    split = Split(*(torch.from_numpy(a) for a in arrays))
    shipped = Dataset(train=split, val=split[:2], test=split[2:], key="k").numpy()
    for name, array in zip(ARRAYS, arrays):
        assert isinstance(getattr(shipped.train, name), np.ndarray)
        assert np.shares_memory(getattr(shipped.train, name), array)
    for array in arrays:                                      # the object store hands out read-only arrays
        array.flags.writeable = False
    back = Dataset(train=Split(*arrays), val=split[:2], test=split[2:], key="k").tensors()
    for name, array in zip(ARRAYS, arrays):
        tensor = getattr(back.train, name)
        assert isinstance(tensor, torch.Tensor) and tensor.data_ptr() == array.ctypes.data
        assert torch.equal(tensor, torch.from_numpy(array.copy()))
    assert back.tensors().train.pos0 is back.train.pos0       # tensors stay as they are
