"""Structured logs (structlog) and Prometheus metrics."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


def configure_logging(level: str, fmt: str) -> None:
    """Send structured logs to stderr, as JSON lines or for a terminal."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        # Drop filtered-out calls first, before any work is spent rendering them.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # we log requests ourselves
    # The twilio library logs every request's headers at INFO: what it says is in our logs.
    logging.getLogger("twilio").setLevel(max(logging.WARNING, root.level))


class Metrics:
    """The hub's Prometheus metrics, in a registry of their own (one per running hub)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "hub_http_requests",
            "HTTP requests answered, by route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "hub_http_request_duration_seconds",
            "Time to answer an HTTP request, by route.",
            ["method", "route"],
            registry=self.registry,
        )
        self.inbound = Counter(
            "hub_inbound_messages",
            "Inbound messages taken in, by channel and outcome (stored, duplicate, rejected).",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.routing = Gauge(
            "hub_routing",
            "How routing keeps up, as last checked: bus_backlog (events not yet handled), "
            "waiting, free_agents, stuck (work a free agent could take, waiting over 30 s), "
            "behind (1 or 0).",
            ["figure"],
            registry=self.registry,
        )

        self.outbox = Gauge(
            "hub_outbox",
            "The outbox's dispatch in this process, as scraped: in_flight (events handed to "
            "subscribers, not yet delivered), lag_seconds (how long the oldest of them has "
            "waited since its commit), delivered and failed (subscriber calls that failed for "
            "good) since start.",
            ["figure"],
            registry=self.registry,
        )

    def watch_outbox(self, figures: Mapping[str, Callable[[], float]]) -> None:
        """Read the outbox's figures at every scrape."""
        for figure, read in figures.items():
            self.outbox.labels(figure).set_function(read)

    def routing_health(self, figures: Mapping[str, float]) -> None:
        """Record routing's latest health check."""
        for figure, value in figures.items():
            self.routing.labels(figure).set(value)
