"""The hub's Redis clients: one way to connect, that survives a Redis restarting.

A Redis that restarts (or fails over) closes every pooled connection; the first command on
each would fail with ConnectionError, and a handler that does not expect it never answers
(an agent's accept hanging until its timeout). So commands are retried on a new connection,
briefly, with backoff; a Redis that stays away still fails fast enough to be reported. Reads
have a socket timeout, so a half-open connection cannot block forever.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

RETRIES = 4  # over about 1.5 s: enough for a restart on the same host
SOCKET_SECONDS = 10.0  # longer than any blocking read the hub makes (the bus blocks 0.5 s)


def connect(url: str) -> aioredis.Redis:
    """A client for url (strings decoded), retrying commands across a reconnect."""
    return aioredis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=SOCKET_SECONDS,
        socket_timeout=SOCKET_SECONDS,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), RETRIES),
        retry_on_error=[RedisConnectionError, RedisTimeoutError, ConnectionResetError],
    )
