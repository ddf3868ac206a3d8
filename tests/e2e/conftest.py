"""One local stack per test session (real handlers, real ASL, the moto extension); every test
starts from a freshly reset and seeded emulator. The session ends by checking that every process
the stack started is gone.

IAM proven from traffic: after every test that used the stack, each call the stack's principals
made (the functions, the automation steps, the instances, the operator CLI's approve / deny, and
what AWS does on their behalf) is evaluated against the caller's policies from the templates
(local/iam); a call that would be denied fails the test, naming it."""

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
# `cargo lambda` is the venv's cargo-lambda.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

from local.iam.check import RECORDING, Checker, explain  # noqa: E402
from local.stack import LocalStack, pid_alive, read_facts  # noqa: E402


@pytest.fixture(scope="session")
def stack():
    s = LocalStack(rust_log="warn")
    try:
        s.start()
        RECORDING.unlink(missing_ok=True)
        s.iam = Checker(s)
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


@pytest.fixture(autouse=True)
def iam_checked(request):
    """Every call the test made the stack make is one its caller's policies allow."""
    if "stack" not in request.fixturenames:
        yield
        return
    stack = request.getfixturevalue("stack")
    stack.iam.take()  # calls of an earlier test that failed before its check
    yield
    denials = stack.iam.check()
    assert not denials, "calls the templates' IAM policies would deny:\n" + explain(denials)
