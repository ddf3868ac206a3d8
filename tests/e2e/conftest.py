"""One local stack per test session (real handlers, real ASL, the moto extension); every test
starts from a freshly reset and seeded emulator. The session ends by checking that every process
the stack started is gone."""

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
# `cargo lambda` is the venv's cargo-lambda.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

from local.stack import LocalStack, pid_alive, read_facts  # noqa: E402


@pytest.fixture(scope="session")
def stack():
    s = LocalStack(rust_log="warn")
    try:
        s.start()
        yield s
    finally:
        s.stop()
        left = [pid for pid in s.started_pids if pid_alive(pid)]
        assert not left, f"processes the stack started are still running: {left}"


@pytest.fixture
def fresh(stack):
    """The stack, reset and seeded; plus the emulator's state before the run."""
    stack.reset()
    return stack


@pytest.fixture
def before(fresh):
    return read_facts(fresh)
