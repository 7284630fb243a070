import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_an_unknown_hypervisor_driver_stops_start_up(tmp_path):
    env = {**os.environ, "HYPERVISOR_DRIVER": "vmware", "HANGAR_VAR_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=BASE_DIR, env=env, capture_output=True, text=True)
    assert done.returncode != 0
    assert "HYPERVISOR_DRIVER='vmware' must be one of: simulated, libvirt" in done.stderr
