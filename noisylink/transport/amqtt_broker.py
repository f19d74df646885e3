"""A pure-Python MQTT 3.1.1 broker (amqtt) on 127.0.0.1, for machines without mosquitto.

Run as ``python -m noisylink.transport.amqtt_broker --port P [--password-file F]
[--certfile C --keyfile K]``; it serves until SIGTERM or SIGINT and then shuts down cleanly.
The password file holds ``user:hash`` lines with Argon2 hashes (see ``brokers.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

LOG = logging.getLogger("noisylink.amqtt_broker")


def broker_config(
    port: int,
    *,
    password_file: Path | None = None,
    certfile: Path | None = None,
    keyfile: Path | None = None,
) -> dict[str, Any]:
    """The amqtt 0.12 configuration: one TCP listener on 127.0.0.1, file or anonymous auth."""
    listener: dict[str, Any] = {"type": "tcp", "bind": f"127.0.0.1:{port}"}
    if certfile is not None and keyfile is not None:
        listener |= {"ssl": True, "certfile": str(certfile), "keyfile": str(keyfile)}
    auth: dict[str, Any]
    if password_file is None:
        auth = {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}
    else:  # returns None (= refused) for clients without a username
        auth = {
            "amqtt.plugins.authentication.FileAuthPlugin": {"password_file": str(password_file)}
        }
    return {"listeners": {"default": listener}, "plugins": auth}


async def serve(config: dict[str, Any]) -> None:
    """Run the broker until SIGTERM or SIGINT."""
    from amqtt.broker import Broker

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    broker = Broker(config)
    await broker.start()
    LOG.info("amqtt broker listening on %s", config["listeners"]["default"]["bind"])
    await stop.wait()
    await broker.shutdown()
    LOG.info("amqtt broker stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m noisylink.transport.amqtt_broker")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--password-file", type=Path)
    parser.add_argument("--certfile", type=Path)
    parser.add_argument("--keyfile", type=Path)
    args = parser.parse_args(argv)
    if (args.certfile is None) != (args.keyfile is None):
        parser.error("--certfile and --keyfile go together")

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    LOG.setLevel(logging.INFO)
    config = broker_config(
        args.port, password_file=args.password_file, certfile=args.certfile, keyfile=args.keyfile
    )
    try:
        asyncio.run(serve(config))
    except Exception as exc:  # one line for the parent's error message, no traceback
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"amqtt broker failed: {message}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
