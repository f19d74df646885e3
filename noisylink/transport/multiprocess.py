"""``noisylink run SCENARIO --transport mqtt``: the three roles as processes, one command.

Starts a broker when none is given (``brokers.start_broker``: mosquitto if on the PATH, else
amqtt in its own process, on a free loopback port), then ``noisylink rx``, ``channel`` and
``tx`` as child processes sharing a fresh run id and run token. Messages are signed with the
user's key (``--key-file``/``NOISYLINK_MQTT_KEY``) or, without one, a fresh random key: only
these three processes can then act on the run. Credentials and keys reach the children through
the environment, never their command lines. Whatever happens (a role failing, Ctrl-C,
SIGTERM or SIGHUP), everything started here is stopped before returning.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from noisylink.errors import NoisylinkError
from noisylink.transport.mqtt import CA_FILE_ENV, PASSWORD_ENV, USERNAME_ENV, Broker
from noisylink.transport.session import KEY_ENV, new_token

ROLES = ("rx", "channel", "tx")  # receiver first, so it listens before frames flow


class RoleFailed(NoisylinkError):  # noqa: N818 - reads as a sentence
    """A role process exited with an error."""

    def __init__(self, role: str, code: int, message: str):
        self.role = role
        self.code = code
        super().__init__(message)


def scenario_argument(ref: str) -> str:
    """What the children get: an absolute path for files, the name for built-ins."""
    path = Path(ref)
    return str(path.resolve()) if path.exists() else ref


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP raise ``KeyboardInterrupt`` here, as Ctrl-C does, so the children
    are stopped on the way out; the previous handlers come back afterwards."""

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {number: signal.signal(number, interrupt)
                for number in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def run_over_mqtt(scenario_ref: str, run_name: str, out_dir: Path, broker: Broker | None,
                  timeout: float = 60.0, poll_s: float = 0.2,
                  key_file: Path | None = None) -> None:
    """Run the scenario as three processes over ``broker`` (or an embedded one), signed with
    the key of ``key_file``, else ``NOISYLINK_MQTT_KEY``, else a fresh random key."""
    with signals_interrupt():
        _run_over_mqtt(scenario_ref, run_name, out_dir, broker, timeout, poll_s, key_file)


def _run_over_mqtt(scenario_ref: str, run_name: str, out_dir: Path, broker: Broker | None,
                   timeout: float, poll_s: float, key_file: Path | None) -> None:
    from noisylink.transport.brokers import start_broker

    local = start_broker("auto") if broker is None else None
    target = Broker.from_url(local.url) if local is not None else broker
    assert target is not None  # one of the two is given
    env = dict(os.environ)
    for name, value in ((USERNAME_ENV, target.username), (PASSWORD_ENV, target.password),
                        (CA_FILE_ENV, str(target.ca_file) if target.ca_file else None)):
        if value is not None:
            env[name] = value
    if key_file is None and not env.get(KEY_ENV):
        env[KEY_ENV] = secrets.token_hex(32)
    run_id = f"{run_name}-{uuid.uuid4().hex[:8]}"
    common = [scenario_argument(scenario_ref), "--broker", target.url, "--run-id", run_id,
              "--run-token", new_token().hex(), "--timeout", str(timeout)]
    if key_file is not None:
        common += ["--key-file", str(key_file.resolve())]
    if not target.on_loopback and target.username is None:
        common.append("--allow-anonymous")  # the caller already accepted it
    processes: dict[str, subprocess.Popen[str]] = {}
    try:
        for role in ROLES:
            extra = ["--out", str(out_dir), "--force"] if role == "rx" else []  # checked
            processes[role] = subprocess.Popen(
                [sys.executable, "-m", "noisylink", role, *common, *extra], env=env,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
        while any(p.poll() is None for p in processes.values()):
            for role, process in processes.items():
                code = process.poll()
                if code not in (None, 0):
                    stderr = process.stderr.read() if process.stderr else ""
                    lines = [line for line in stderr.strip().splitlines() if line.strip()]
                    message = lines[-1].removeprefix("error: ") if lines else f"exit {code}"
                    raise RoleFailed(role, code, message)
            time.sleep(poll_s)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
        if local is not None:
            local.stop()
