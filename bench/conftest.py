import pytest
from frames import BENCH_FRAMES


def pytest_collection_modifyitems(config, items):
    if not BENCH_FRAMES.is_dir():
        skip = pytest.mark.skip(reason=f"{BENCH_FRAMES} not found")
        for item in items:
            item.add_marker(skip)
