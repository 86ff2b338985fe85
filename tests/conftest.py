"""Fixtures of the serial tests."""

import os
import signal

import pytest
from helpers import STARTED


@pytest.fixture(autouse=True)
def no_job_outlives_its_test():
    """Kill the process group of every mlpar job a test started and left running (a test that
    failed on a hung job): it would otherwise burn the cores of the tests after it."""
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
