"""`hub simulate` and `hub staffing`: the simulator and Erlang answers for planners."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from hub.cli.root import main


@main.command()
@click.option("--arrivals-per-hour", type=click.FloatRange(min=0.001), required=True)
@click.option(
    "--aht", type=click.FloatRange(min=0.001), required=True, help="Mean handling time, s."
)
@click.option("--agents", type=click.IntRange(min=1), required=True)
@click.option("--patience", type=click.FloatRange(min=0.001), help="Mean patience, s (Erlang A).")
@click.option("--sl-seconds", type=click.FloatRange(min=0), default=20, show_default=True)
@click.option("--contacts", type=click.IntRange(min=10), default=100_000, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with the formula's figures).")
def simulate(
    arrivals_per_hour: float,
    aht: float,
    agents: int,
    patience: float | None,
    sl_seconds: float,
    contacts: int,
    seed: int,
    as_json: bool,
) -> None:
    """Simulate one queue with the real routing engine, beside Erlang C / Erlang A."""
    from hub.routing.erlang import queue_metrics
    from hub.routing.simulator import run_simulation

    result = run_simulation(
        arrivals_per_hour=arrivals_per_hour,
        aht_seconds=aht,
        agents=agents,
        contacts=contacts,
        sl_seconds=sl_seconds,
        patience_seconds=patience,
        seed=seed,
    ).as_dict()
    formula = queue_metrics(arrivals_per_hour, aht, agents, sl_seconds, patience)
    result["model"] = "erlang_c" if patience is None else "erlang_a"
    result["formula"] = {  # an unstable queue has no finite wait: null, not JSON-less Infinity
        k: None if math.isinf(getattr(formula, k)) else round(getattr(formula, k), 5)
        for k in ("p_wait", "service_level", "asa_seconds", "abandon_rate", "occupancy")
    }
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for key in ("p_wait", "service_level", "asa_seconds", "abandon_rate", "occupancy"):
        click.echo(
            f"{key:16} simulated {result[key]:<10} {result['model']} {result['formula'][key]}"
        )
    click.echo(f"{result['contacts']} contacts, {result['contacts_per_wall_second']} per second")


@main.command()
@click.option("--arrivals-per-hour", type=click.FloatRange(min=0.001), required=True)
@click.option(
    "--aht", type=click.FloatRange(min=0.001), required=True, help="Mean handling time, s."
)
@click.option("--target", type=click.FloatRange(0.01, 0.999), default=0.8, show_default=True)
@click.option("--sl-seconds", type=click.FloatRange(min=0), default=20, show_default=True)
@click.option("--patience", type=click.FloatRange(min=0.001), help="Mean patience, s (Erlang A).")
@click.option(
    "--plot", type=click.Path(dir_okay=False, path_type=Path), help="Write the curve as PNG."
)
@click.option("--json", "as_json", is_flag=True)
def staffing(
    arrivals_per_hour: float,
    aht: float,
    target: float,
    sl_seconds: float,
    patience: float | None,
    plot: Path | None,
    as_json: bool,
) -> None:
    """How many agents meet a service level (default 80% within 20 s) at this volume."""
    from hub.routing.erlang import agents_for_service_level
    from hub.routing.staffing import curve, curve_range, plot_service_level

    needed = agents_for_service_level(arrivals_per_hour, aht, target, sl_seconds, patience)
    points = curve(
        arrivals_per_hour,
        aht,
        sl_seconds,
        patience,
        curve_range(arrivals_per_hour, aht, needed.agents),
    )
    if plot is not None:
        plot_service_level(
            plot,
            points,
            target=target,
            sl_seconds=sl_seconds,
            arrivals_per_hour=arrivals_per_hour,
            aht_seconds=aht,
        )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "agents": needed.agents,
                    "service_level": round(needed.service_level, 4),
                    "asa_seconds": round(needed.asa_seconds, 2),
                    "abandon_rate": round(needed.abandon_rate, 4),
                    "occupancy": round(needed.occupancy, 4),
                    "curve": [
                        {"agents": p.agents, "service_level": round(p.service_level, 4)}
                        for p in points
                    ],
                },
                indent=2,
            )
        )
        return
    click.echo(
        f"{needed.agents} agents: {needed.service_level:.1%} answered within "
        f"{sl_seconds:g} s, ASA {needed.asa_seconds:.1f} s, occupancy {needed.occupancy:.1%}"
    )
    for p in points:
        click.echo(f"  {p.agents:4d} agents  SL {p.service_level:6.1%}  ASA {p.asa_seconds:8.1f} s")
    if plot is not None:
        click.echo(f"curve written to {plot}")
