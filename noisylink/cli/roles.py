"""``noisylink tx``, ``channel`` and ``rx``: one MQTT role each, on any machine."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from noisylink.cli.common import Force, ScenarioArgument, console, fail, refuse_existing_results
from noisylink.cli.mqtt_options import (
    AllowAnonymous,
    BrokerUrl,
    CaFile,
    KeyFile,
    MqttOptions,
    Password,
    RunId,
    RunToken,
    Timeout,
    Username,
    run_role,
)
from noisylink.errors import NoisylinkError

if TYPE_CHECKING:
    from noisylink.scenarios.schema import Scenario
    from noisylink.transport.mqtt import Broker
    from noisylink.transport.roles import RunAccess

app = typer.Typer()


def _sending_role(scenario: str, role: str,
                  runner: Callable[[Scenario, Broker, RunAccess], Awaitable[None]],
                  options: MqttOptions) -> None:
    """Run the transmitter or channel role (``runner``) for a scenario over MQTT."""

    def body(loaded: Scenario, _source: str) -> object:
        return runner(loaded, options.connect(), options.access(loaded.name))

    run_role(scenario, role, body)


@app.command()
def tx(
    scenario: ScenarioArgument,
    broker: BrokerUrl, username: Username = None, password: Password = None,
    ca_file: CaFile = None, run_id: RunId = None, run_token: RunToken = None,
    key_file: KeyFile = None, timeout: Timeout = 60.0, allow_anonymous: AllowAnonymous = False,
) -> None:
    """The transmitter role: encode, packetize, protect and send frames to the broker."""
    from noisylink.transport.roles import run_transmitter

    _sending_role(scenario, "transmitter", run_transmitter, MqttOptions(
        broker, username, password, ca_file, run_id, run_token, key_file, timeout,
        allow_anonymous))


@app.command("channel")
def channel_role(
    scenario: ScenarioArgument,
    broker: BrokerUrl, username: Username = None, password: Password = None,
    ca_file: CaFile = None, run_id: RunId = None, run_token: RunToken = None,
    key_file: KeyFile = None, timeout: Timeout = 60.0, allow_anonymous: AllowAnonymous = False,
) -> None:
    """The channel role: corrupt the transmitter's frames and pass them to the receiver."""
    from noisylink.transport.roles import run_channel

    _sending_role(scenario, "channel", run_channel, MqttOptions(
        broker, username, password, ca_file, run_id, run_token, key_file, timeout,
        allow_anonymous))


@app.command()
def rx(
    scenario: ScenarioArgument,
    broker: BrokerUrl,
    out: Annotated[Path, typer.Option(help="Output folder for results.csv and manifest.json.")],
    username: Username = None, password: Password = None, ca_file: CaFile = None,
    run_id: RunId = None, run_token: RunToken = None, key_file: KeyFile = None,
    timeout: Timeout = 60.0, allow_anonymous: AllowAnonymous = False, force: Force = False,
) -> None:
    """The receiver role: demodulate, decode ECC and images, write results.csv (an --out
    folder that already holds results is refused unless --force)."""
    from noisylink.outdir import check_out_dir
    from noisylink.transport.roles import run_receiver

    try:
        check_out_dir(out, "output folder")
        refuse_existing_results(out, force)
    except NoisylinkError as exc:
        raise fail(str(exc)) from None
    options = MqttOptions(broker, username, password, ca_file, run_id, run_token, key_file,
                          timeout, allow_anonymous)

    def body(loaded: Scenario, source: str) -> None:
        outcome = run_receiver(loaded, options.connect(), options.access(loaded.name), out,
                               source)
        console.print(f"{len(outcome.rows)} rows in {outcome.wall_s:.1f} s -> "
                      f"{outcome.results_path}", highlight=False)

    run_role(scenario, "receiver", body)
