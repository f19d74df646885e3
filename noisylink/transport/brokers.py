"""Local MQTT brokers for tests and for ``noisylink run --transport mqtt``.

``start_broker()`` starts mosquitto when its binary is installed, else amqtt (pure Python, in a
subprocess), listening on 127.0.0.1 only, optionally with username/password and TLS::

    with start_broker(users={"alice": "secret"}) as broker:
        ...  # connect to broker.url; broker.restart() to test reconnection
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import hashlib
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal

from noisylink.errors import NoisylinkError
from noisylink.processes import die_with_parent

BrokerKind = Literal["mosquitto", "amqtt"]

HOST = "127.0.0.1"
READY_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
_SBIN = ("/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin")


@dataclass(eq=False)
class LocalBroker:
    """A broker process on 127.0.0.1 that this process started (and stops)."""

    kind: BrokerKind
    host: str
    port: int
    url: str
    workdir: Path
    argv: list[str] = field(default_factory=list, repr=False)
    log_path: Path | None = field(default=None, repr=False)
    owns_workdir: bool = field(default=False, repr=False)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        """(Re)start the broker on the same port with the same config; wait until it is ready."""
        if self.process is not None and self.process.poll() is None:
            return
        occupied = _accepts(self.host, self.port)
        if self.log_path is None:
            self.log_path = self.workdir / f"{self.kind}.log"
        with open(self.log_path, "ab") as log:
            try:
                self.process = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.workdir,
                    start_new_session=True,
                    preexec_fn=_death_signal(),
                )
            except OSError as exc:
                raise self._failure(f"could not run {self.argv[0]}: {exc}") from exc
        self._wait_ready(occupied)

    def stop(self) -> None:
        """Terminate the broker (SIGTERM, then SIGKILL after 5 s); does nothing if stopped."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
        _signal_group(process, signal.SIGKILL)  # anything left in its session

    def restart(self) -> None:
        """Stop the broker and start it again on the same port."""
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self.process is not None and self.process.poll() is None

    def close(self) -> None:
        """Stop the broker and remove its workdir if ``start_broker`` created it."""
        self.stop()
        if self.owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalBroker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _wait_ready(self, occupied: bool) -> None:
        assert self.process is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                raise self._failure("exited at start")
            # A port someone else listens on answers at once: wait for the broker to give up.
            if not occupied and _accepts(self.host, self.port):
                return
            time.sleep(0.05)
        self.stop()
        if occupied:
            raise self._failure(f"port {self.port} is already in use by another process")
        raise self._failure(f"not listening on port {self.port} after {READY_TIMEOUT_S:.0f} s")

    def _failure(self, what: str) -> NoisylinkError:
        last = _last_line(self.log_path) if self.log_path else ""
        detail = f": {last}" if last else ""
        return NoisylinkError(f"{self.kind} broker on {self.host}:{self.port} {what}{detail}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def mosquitto_binary() -> str | None:
    """The mosquitto executable (also looked for in /usr/sbin, often not on PATH), or None."""
    return _find("mosquitto")


def start_broker(
    kind: Literal["auto", "mosquitto", "amqtt"] = "auto",
    *,
    port: int | None = None,
    users: Mapping[str, str] | None = None,
    tls: tuple[Path, Path] | None = None,
    workdir: Path | None = None,
) -> LocalBroker:
    """Start a broker on 127.0.0.1 and wait until it accepts connections.

    ``auto`` is mosquitto when installed, else amqtt. With ``users`` (username -> password) only
    those users may connect, else anyone; with ``tls=(certfile, keyfile)`` the listener speaks
    TLS only. Use the result as a context manager to stop it (and remove its temp workdir).
    """
    if kind == "auto":
        kind = "mosquitto" if mosquitto_binary() else "amqtt"
    if kind not in ("mosquitto", "amqtt"):
        raise NoisylinkError(f"unknown broker kind {kind!r}; valid: auto, mosquitto, amqtt")
    if users is not None:
        _check_users(users)
    if tls is not None:
        tls = _check_tls(tls)
    port = free_port() if port is None else port

    owns = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix=f"noisylink-{kind}-")) if workdir is None else workdir
    workdir.mkdir(parents=True, exist_ok=True)
    workdir = workdir.resolve()
    broker = LocalBroker(
        kind=kind,
        host=HOST,
        port=port,
        url=f"{'mqtts' if tls else 'mqtt'}://{HOST}:{port}",
        workdir=workdir,
        log_path=workdir / f"{kind}.log",
        owns_workdir=owns,
    )
    try:
        if kind == "mosquitto":
            broker.argv = _mosquitto_setup(workdir, port, users, tls)
        else:
            broker.argv = _amqtt_setup(workdir, port, users, tls)
        broker.start()
    except BaseException:
        broker.close()
        raise
    _LIVE.add(broker)
    return broker


_LIVE: weakref.WeakSet[LocalBroker] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """Brokers still running when the interpreter exits (no ``with``) are closed too."""
    for broker in list(_LIVE):
        broker.close()


# --- mosquitto -----------------------------------------------------------------------------


def _mosquitto_setup(
    workdir: Path, port: int, users: Mapping[str, str] | None, tls: tuple[Path, Path] | None
) -> list[str]:
    binary = mosquitto_binary()
    if binary is None:
        raise NoisylinkError("mosquitto broker: no mosquitto binary on PATH or in /usr/sbin")
    lines = [
        f"listener {port} {HOST}",
        f"allow_anonymous {'true' if users is None else 'false'}",
        "persistence false",
        "log_dest stderr",  # the parent sends it to mosquitto.log in workdir
    ]
    if os.geteuid() == 0:  # else mosquitto switches to user "mosquitto", losing access to workdir
        lines.append("user root")
    if tls is not None:
        lines += [f"certfile {tls[0]}", f"keyfile {tls[1]}"]
    if users is not None:
        password_file = workdir / "passwords"
        _mosquitto_passwords(password_file, users)
        lines.append(f"password_file {password_file}")
    config = workdir / "mosquitto.conf"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [binary, "-c", str(config)]


def _mosquitto_passwords(path: Path, users: Mapping[str, str]) -> None:
    """A mosquitto password file: via mosquitto_passwd when installed, else the same format."""
    path.unlink(missing_ok=True)
    path.touch(mode=0o600)
    tool = _find("mosquitto_passwd")
    if tool is None:
        path.write_text("".join(f"{u}:{_mosquitto_hash(p)}\n" for u, p in users.items()))
        return
    for user, password in users.items():
        done = subprocess.run(
            [tool, "-b", str(path), user, password], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            last = _last_line_of(done.stderr + done.stdout)
            raise NoisylinkError(f"mosquitto broker: mosquitto_passwd failed for {user!r}: {last}")


def _mosquitto_hash(password: str, *, iterations: int = 101) -> str:
    """mosquitto 2.0's ``$7$`` hash: PBKDF2-SHA512, 12-byte salt, base64."""
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


# --- amqtt ---------------------------------------------------------------------------------


def _amqtt_setup(
    workdir: Path, port: int, users: Mapping[str, str] | None, tls: tuple[Path, Path] | None
) -> list[str]:
    if importlib.util.find_spec("amqtt") is None:
        raise NoisylinkError("amqtt broker: the amqtt package is not installed")
    argv = [sys.executable, "-m", "noisylink.transport.amqtt_broker", "--port", str(port)]
    if users is not None:
        password_file = workdir / "passwords"
        password_file.unlink(missing_ok=True)
        password_file.touch(mode=0o600)
        password_file.write_text("".join(f"{u}:{_amqtt_hash(p)}\n" for u, p in users.items()))
        argv += ["--password-file", str(password_file)]
    if tls is not None:
        argv += ["--certfile", str(tls[0]), "--keyfile", str(tls[1])]
    return argv


def _amqtt_hash(password: str) -> str:
    """An Argon2id hash, the format amqtt's FileAuthPlugin checks (via pwdlib)."""
    try:
        from pwdlib.hashers.argon2 import Argon2Hasher
    except ImportError as exc:
        message = "amqtt broker: passwords need pwdlib[argon2] (an amqtt dependency)"
        raise NoisylinkError(message) from exc
    # OWASP's minimum Argon2id settings: about 50 ms per check instead of 150 ms
    return Argon2Hasher(time_cost=2, memory_cost=19456, parallelism=1).hash(password)


# --- helpers -------------------------------------------------------------------------------


def _check_users(users: Mapping[str, str]) -> None:
    if not users:
        raise NoisylinkError("broker users: give at least one username, or users=None")
    for user, password in users.items():
        if not user or any(c in user for c in ":\n\r") or user != user.strip():
            raise NoisylinkError(f"broker users: bad username {user!r}")
        if any(c in password for c in "\n\r"):
            raise NoisylinkError(f"broker users: the password of {user!r} has a line break")


def _check_tls(tls: tuple[Path, Path]) -> tuple[Path, Path]:
    certfile, keyfile = (Path(p).resolve() for p in tls)
    for name, path in (("certfile", certfile), ("keyfile", keyfile)):
        if not path.is_file():
            raise NoisylinkError(f"broker tls: {name} {path} not found")
    return certfile, keyfile


def _find(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for folder in _SBIN:
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _accepts(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)  # its own session: process group id == pid


def _death_signal() -> Callable[[], None] | None:
    """On Linux, a pre-exec hook that SIGTERMs the broker when this process dies.

    Only from the main thread: Linux sends the signal when the *thread* that started the
    broker ends, so a broker started from a worker thread would die with that thread.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not (
        threading.main_thread()
    ):
        return None
    parent = os.getpid()

    def hook() -> None:
        die_with_parent(signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl
            os.kill(os.getpid(), signal.SIGTERM)

    return hook


_TIMESTAMP = re.compile(r"^\d{9,}: ")


def _last_line(path: Path) -> str:
    try:
        data = path.read_bytes()[-8192:]
    except OSError:
        return ""
    return _last_line_of(data.decode("utf-8", "replace"))


def _last_line_of(text: str) -> str:
    """The last non-empty line, without mosquitto's timestamp."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return _TIMESTAMP.sub("", lines[-1]) if lines else ""
