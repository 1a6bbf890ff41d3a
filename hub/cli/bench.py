"""`hub bench`: benchmarks that report numbers."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

import click

from hub.cli.root import main, run, with_settings
from hub.config import Settings
from hub.observability import configure_logging


@main.group()
def bench() -> None:
    """Benchmarks that report numbers (never pass/fail)."""


@bench.command(name="routing")
@click.option("--agents", default=5_000, show_default=True)
@click.option("--queues", default=500, show_default=True)
@click.option("--decisions", default=5_000, show_default=True, help="New contacts to route.")
@click.option("--backlog", default=20_000, show_default=True, help="Waiting items for the tick.")
@click.option("--redis-url", help="Also bench the Redis state here (default: HUB_REDIS_URL).")
@click.option("--sim-contacts", default=100_000, show_default=True, help="Simulator contacts.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@with_settings
def bench_routing(
    settings: Settings,
    agents: int,
    queues: int,
    decisions: int,
    backlog: int,
    redis_url: str | None,
    sim_contacts: int,
    as_json: bool,
) -> None:
    """Routing decisions per second and their latency, memory and Redis; simulator speed."""
    from hub.bench.routing import run_routing_bench

    result = run(
        run_routing_bench(
            agents=agents,
            queues=queues,
            decisions=decisions,
            backlog=backlog,
            redis_url=redis_url or settings.redis_url,
            progress=lambda line: click.echo(line, err=True),
            sim_contacts=sim_contacts,
        )
    )
    click.echo(json.dumps(result, indent=2) if as_json else _lines(result))


def _bench(
    start: Callable[..., Coroutine[Any, Any, dict[str, Any]]],
    settings: Settings,
    as_json: bool,
    **options: Any,
) -> None:
    """Run a benchmark (its progress on stderr) and print its figures.

    The hub under test logs warnings only: a line per request on a terminal would be timed
    along with the hub, and the baselines log nothing.
    """
    configure_logging("WARNING", settings.log_format)
    result: dict[str, Any] = run(
        start(settings, progress=lambda line: click.echo(line, err=True), **options)
    )
    click.echo(json.dumps(result, indent=2) if as_json else _lines(result))


def _lines(result: dict[str, Any], indent: str = "") -> str:
    out = []
    for key, value in result.items():
        if isinstance(value, dict):
            out.append(f"{indent}{key}:")
            out.append(_lines(value, indent + "  "))
        else:
            out.append(f"{indent}{key:32} {value}")
    return "\n".join(out)


@bench.command(name="sms")
@click.option("--requests", default=2_000, show_default=True, help="Webhooks to time.")
@click.option("--concurrency", default=8, show_default=True, help="Requests in flight at once.")
@click.option("--customers", default=500, show_default=True, help="Distinct senders.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@with_settings
def bench_sms(
    settings: Settings, requests: int, concurrency: int, customers: int, as_json: bool
) -> None:
    """Inbound SMS webhooks/s (signed, committed, routed) and p99, beside bare aiohttp."""
    from hub.bench.sms import run_sms_bench

    _bench(
        run_sms_bench,
        settings,
        as_json,
        requests=requests,
        concurrency=concurrency,
        customers=customers,
    )


@bench.command(name="email")
@click.option("--messages", default=5_000, show_default=True, help="The backlog in Dovecot.")
@click.option("--senders", default=500, show_default=True, help="Distinct customers.")
@click.option("--batch-size", default=100, show_default=True, help="Messages per UID FETCH.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@with_settings
def bench_email(
    settings: Settings, messages: int, senders: int, batch_size: int, as_json: bool
) -> None:
    """Messages/s ingested from a backlog in a real Dovecot (parsed, threaded, committed)."""
    from hub.bench.email import run_email_bench

    _bench(
        run_email_bench,
        settings,
        as_json,
        messages=messages,
        senders=senders,
        batch_size=batch_size,
    )


@bench.command(name="console")
@click.option("--agents", default=500, show_default=True, help="Agent connections to hold.")
@click.option("--contacts", default=200, show_default=True, help="Contacts to time to the offer.")
@click.option(
    "--rate",
    default=0.0,
    show_default=True,
    help="Contacts a second, sent steadily (0: one at a time).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@with_settings
def bench_console(
    settings: Settings, agents: int, contacts: int, rate: float, as_json: bool
) -> None:
    """Agent socket.io connections one hub holds, and webhook-to-offer latency in the client."""
    from hub.bench.console import run_console_bench

    _bench(run_console_bench, settings, as_json, agents=agents, contacts=contacts, rate=rate)


@bench.command(name="chat")
@click.option("--sessions", default=1000, show_default=True, help="Chat sessions to hold open.")
@click.option("--chats", default=30, show_default=True, help="Of them, chatting with agents.")
@click.option("--rounds", default=300, show_default=True, help="Round trips to time.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@with_settings
def bench_chat(settings: Settings, sessions: int, chats: int, rounds: int, as_json: bool) -> None:
    """Chat sessions one hub holds, and visitor -> agent -> visitor round trips in the client."""
    from hub.bench.chat import run_chat_bench

    _bench(run_chat_bench, settings, as_json, sessions=sessions, chats=chats, rounds=rounds)


@bench.command(name="fax")
@click.option("--faxes", default=20, show_default=True, help="Faxes to receive.")
@click.option("--pages", default=3, show_default=True, help="Pages in each.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@with_settings
def bench_fax(settings: Settings, faxes: int, pages: int, as_json: bool) -> None:
    """Fax webhooks answered while OCR runs behind them, and pages read per second."""
    from hub.bench.fax import run_fax_bench

    _bench(run_fax_bench, settings, as_json, faxes=faxes, pages=pages)


@bench.command(name="store")
@click.option("--customers", default=100_000, show_default=True, help="Customers in the store.")
@click.option("--events", default=10_000, show_default=True, help="Events on the read customer.")
@click.option("--requests", default=2_000, show_default=True, help="GETs of the record to time.")
@click.option("--concurrency", default=8, show_default=True, help="Requests in flight at once.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@with_settings
def bench_store(
    settings: Settings,
    customers: int,
    events: int,
    requests: int,
    concurrency: int,
    as_json: bool,
) -> None:
    """Unified-record reads per second and GET /api/v1/customers/{id} latency."""
    from hub.bench.store import run_store_bench

    # Through _bench like the others: the hub under test logs warnings only (it used to log a
    # line per GET, a twentieth of the GET's processor time, timed along with it).
    _bench(
        run_store_bench,
        settings,
        as_json,
        customers=customers,
        events=events,
        requests=requests,
        concurrency=concurrency,
    )


if __name__ == "__main__":
    main()
