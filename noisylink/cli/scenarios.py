"""``noisylink scenarios`` and ``check``: what the built-ins are, and what a scenario's grid
holds, without running anything."""

from __future__ import annotations

import typer
from rich.table import Table

from noisylink.cli.common import ScenarioArgument, console, fail
from noisylink.errors import NoisylinkError

app = typer.Typer()


@app.command()
def scenarios() -> None:
    """List the built-in scenarios."""
    from noisylink.scenarios import builtin_names, load_scenario

    table = Table(title="built-in scenarios (run with: noisylink run NAME)")
    table.add_column("name")
    table.add_column("description")
    for name in builtin_names():
        scenario, _ = load_scenario(name)
        table.add_row(name, scenario.description)
    console.print(table)


@app.command()
def check(
    scenario: ScenarioArgument,
) -> None:
    """Validate a scenario and list the cells of its grid, without running it."""
    from noisylink.scenarios import expand, load_scenario

    try:
        loaded, source = load_scenario(scenario)
        cells = expand(loaded)
    except NoisylinkError as exc:
        raise fail(str(exc)) from None
    console.print(f"{source}: {len(cells)} cells, {loaded.trials} trials each", highlight=False)
    for index, cell in enumerate(cells):
        console.print(f"  {index:3d}  {cell.label}", highlight=False, markup=False)
