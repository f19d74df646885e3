"""The MQTT options that ``run``, ``tx``, ``channel`` and ``rx`` share, and running a role.

Typer needs every option in each command's signature; the types below declare each option
once, and ``MqttOptions`` carries them from the command to the transport as one value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from noisylink.cli.common import fail
from noisylink.errors import NoisylinkError, ScenarioError

if TYPE_CHECKING:
    from noisylink.scenarios.schema import Scenario
    from noisylink.transport.mqtt import Broker
    from noisylink.transport.roles import RunAccess

BrokerUrl = Annotated[str, typer.Option("--broker", help="mqtt://host:port or mqtts://host:port.")]
Username = Annotated[str | None, typer.Option(
    help="Broker username (or NOISYLINK_MQTT_USERNAME).", show_default=False)]
Password = Annotated[str | None, typer.Option(
    help="Broker password (better: NOISYLINK_MQTT_PASSWORD; never printed).",
    show_default=False)]
CaFile = Annotated[Path | None, typer.Option(
    help="CA certificate for mqtts:// (or NOISYLINK_MQTT_CA_FILE).", show_default=False)]
RunId = Annotated[str | None, typer.Option(
    help="Run id shared by the three roles (default: the scenario name).", show_default=False)]
Timeout = Annotated[float, typer.Option(
    help="Give up after this many seconds without the broker or a peer role.")]
AllowAnonymous = Annotated[bool, typer.Option(
    help="Connect without credentials to a broker that is not on this machine.")]
RunToken = Annotated[str | None, typer.Option(
    help="The run's token (hex), when the roles are told it (default: the receiver makes one "
         "and announces it, the others join it).", show_default=False)]
KeyFile = Annotated[Path | None, typer.Option(
    help="Shared key: every message is signed and checked (or NOISYLINK_MQTT_KEY). Use it on "
         "a broker shared with people you do not fully trust.", show_default=False)]




@dataclass(frozen=True)
class MqttOptions:
    """Where the broker is, how to log in, and which run to join."""

    broker: str
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    run_id: str | None = None
    run_token: str | None = None
    key_file: Path | None = None
    timeout: float = 60.0
    allow_anonymous: bool = False

    def connect(self) -> Broker:
        """The broker, refused in one line where its security settings are not acceptable."""
        from noisylink.transport.mqtt import Broker

        broker = Broker.from_url(self.broker, self.username, self.password, self.ca_file)
        broker.check_security(self.allow_anonymous)
        return broker

    def access(self, scenario_name: str) -> RunAccess:
        """How a role finds its run on the broker (one-line errors for a bad token or key)."""
        from noisylink.transport.roles import RunAccess
        from noisylink.transport.session import load_key, parse_token

        token = parse_token(self.run_token) if self.run_token else None
        return RunAccess(self.run_id or scenario_name, token, load_key(self.key_file),
                         self.timeout)


RoleBody = Callable[["Scenario", str], object]
"""Runs a role for the loaded scenario and its source; may return a coroutine to run."""


def run_role(scenario: str, role: str, body: RoleBody) -> None:
    """Load the scenario and run one MQTT role, turning expected failures into one line."""
    import asyncio

    from noisylink.link.runner import IncompleteRunError
    from noisylink.scenarios import load_scenario
    from noisylink.transport.mqtt import CredentialsError
    from noisylink.transport.session import RunClashError

    try:
        loaded, source = load_scenario(scenario)
        result = body(loaded, source)
        if asyncio.iscoroutine(result):
            asyncio.run(result)
    except (CredentialsError, RunClashError) as exc:
        raise fail(str(exc), code=2) from None
    except IncompleteRunError as exc:
        raise fail(f"{role}: {exc}", code=1) from None
    except ScenarioError as exc:
        raise fail(str(exc), code=2) from None
    except NoisylinkError as exc:
        raise fail(f"{role}: {exc}", code=1) from None
    except KeyboardInterrupt:
        raise fail(f"{role}: interrupted", code=130) from None
