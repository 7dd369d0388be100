"""Split and Dataset conversions (the arrays as they cross to Ray workers)."""



def test_numpy_and_back_share_the_memory_and_keep_the_values():
    """What crosses to Ray workers: NumPy views of the same memory (no copy), and tensors again on arrival."""
    import numpy as np
    import torch

    from study.benchmark.format import Dataset, Split

    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(shape).astype(np.float32) for shape in ((5, 2, 3, 3), (5, 2, 3, 3), (5, 2, 8), (5, 2, 3, 3))]
    split = Split(*(torch.from_numpy(a) for a in arrays))
    dataset = Dataset(train=split, val=split[:2], test=split[2:], key="k")
    shipped = dataset.numpy()
    for name, array in zip(("pos0", "vel0", "props", "posT"), arrays):
        assert isinstance(getattr(shipped.train, name), np.ndarray)
        assert np.shares_memory(getattr(shipped.train, name), array)
    for array in arrays:                                      # the object store hands out read-only arrays
        array.flags.writeable = False
    back = Dataset(train=Split(*arrays), val=split[:2], test=split[2:], key="k").tensors()
    for name, array in zip(("pos0", "vel0", "props", "posT"), arrays):
        tensor = getattr(back.train, name)
        assert isinstance(tensor, torch.Tensor) and tensor.data_ptr() == array.ctypes.data
        assert torch.equal(tensor, torch.from_numpy(array.copy()))
    assert back.val is not None and back.tensors().train.pos0 is back.train.pos0   # tensors stay as they are
