import os

import pytest
import torch

# Small networks: one thread per process (see README, "Performance").
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def data_home():
    """The benchmark data folder, or skip with the reason when it is not configured."""
    home = os.environ.get("CAUSALMIM_DATA_HOME")
    if not home or not os.path.isdir(home):
        pytest.skip("CAUSALMIM_DATA_HOME is not set to a folder with the benchmark data")
    return home
