"""Routing state in Redis, shared by several hub processes (scale-out).

Each change that must hold across processes (reserve, release, accept, remove, move, finish,
presence) is one Lua script, which Redis runs atomically: two processes that chose the same
agent or the same work at the same moment cannot both succeed.

Layout under the prefix (default ``hub:routing:``)::

    agent:{id}      hash  presence, reason, presence_since, idle_since, wrap_until,
                          profile (JSON: teams, skills, languages), cap:{channel}, load:{channel}
    agents          set   every agent id;  team:{name}  set  the team's agent ids
    item:{id}       hash  data (JSON), channel, queue, priority, score, enqueued_at,
                          queue_entered_at, excluded (",1:ts,5:ts,": who passed on it, when),
                          offered_to, offer_expires, rung (the agent was told),
                          closed_told
    waiting:{queue} zset  interaction ids not being offered, by score (priority, then place)
    offers          zset  interaction ids being offered, by expiry
    queues          set   queue names seen;  qsize  hash  queue -> items (waiting + offered)
    seen            zset  agent ids by when a hub process last held a console socket of theirs
    built           string  there while the state holds what the store says (gone: rebuild)
    duty:{name}     string  which process does a periodic duty (the reconciler) this period

Keys are built inside the scripts from the prefix, so this needs one Redis server (not a
cluster).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Collection
from datetime import UTC, datetime
from typing import Any, cast

import redis.asyncio as aioredis

from hub.domain.interaction import Channel
from hub.errors import StoreError
from hub.redis_connection import connect
from hub.routing.model import AgentState, Presence, WorkItem
from hub.routing.state.base import Limits, RoutingState

_ITEM_FIELDS = (
    "data",
    "channel",
    "queue",
    "priority",
    "score",
    "enqueued_at",
    "queue_entered_at",
    "excluded",
    "offered_to",
    "offer_expires",
    "closed_told",
)

_ADD_ITEM = """
local item = KEYS[1]
if redis.call('EXISTS', item) == 1 then return 0 end
redis.call('HSET', item, unpack(ARGV, 4))
redis.call('ZADD', ARGV[1] .. 'waiting:' .. ARGV[2], ARGV[3], redis.call('HGET', item, 'id'))
redis.call('SADD', ARGV[1] .. 'queues', ARGV[2])
redis.call('HINCRBY', ARGV[1] .. 'qsize', ARGV[2], 1)
return 1
"""

_RESERVE = """
local item, agent = KEYS[1], KEYS[2]
local p, iid, aid, expires, now, default_cap, exclusive, again =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7], ARGV[8]
if redis.call('EXISTS', item) == 0 or redis.call('HEXISTS', item, 'offered_to') == 1 then
  return 0
end
local excluded = redis.call('HGET', item, 'excluded') or ','
if again ~= '1' and string.find(excluded, ',' .. aid .. ':', 1, true) then return 0 end
local a = redis.call('HMGET', agent, 'presence', 'wrap_until')
if a[1] ~= 'available' then return 0 end
if a[2] and a[2] ~= '' and tonumber(a[2]) > now then return 0 end
local channel = redis.call('HGET', item, 'channel')
local cap = tonumber(redis.call('HGET', agent, 'cap:' .. channel) or default_cap)
local fields = redis.call('HGETALL', agent)
local total, mine, voice = 0, 0, 0
for i = 1, #fields, 2 do
  local k = fields[i]
  if string.sub(k, 1, 5) == 'load:' then
    local n = tonumber(fields[i + 1])
    total = total + n
    if k == 'load:' .. channel then mine = n end
    if k == 'load:voice' then voice = n end
  end
end
if mine >= cap then return 0 end
if exclusive == '1' then
  if channel == 'voice' and total > 0 then return 0 end
  if voice > 0 then return 0 end
end
redis.call('HSET', item, 'offered_to', aid, 'offer_expires', expires)
redis.call('ZREM', p .. 'waiting:' .. redis.call('HGET', item, 'queue'), iid)
redis.call('ZADD', p .. 'offers', expires, iid)
redis.call('HINCRBY', agent, 'load:' .. channel, 1)
return 1
"""

_RELEASE = """
local item, agent = KEYS[1], KEYS[2]
local p, iid, aid, exclude, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('HGET', item, 'offered_to') ~= aid then return {} end
redis.call('HDEL', item, 'offered_to', 'offer_expires', 'rung')
if exclude == '1' then
  local ex = redis.call('HGET', item, 'excluded') or ','
  redis.call('HSET', item, 'excluded', ex .. aid .. ':' .. now .. ',')
end
redis.call('ZREM', p .. 'offers', iid)
local q = redis.call('HGET', item, 'queue')
redis.call('ZADD', p .. 'waiting:' .. q, redis.call('HGET', item, 'score'), iid)
local channel = redis.call('HGET', item, 'channel')
if redis.call('HINCRBY', agent, 'load:' .. channel, -1) < 0 then
  redis.call('HSET', agent, 'load:' .. channel, 0)
end
return redis.call('HGETALL', item)
"""

_ACCEPT = """
local item = KEYS[1]
local p, iid, aid = ARGV[1], ARGV[2], ARGV[3]
if redis.call('HGET', item, 'offered_to') ~= aid then return {} end
local all = redis.call('HGETALL', item)
redis.call('ZREM', p .. 'offers', iid)
redis.call('HINCRBY', p .. 'qsize', redis.call('HGET', item, 'queue'), -1)
redis.call('DEL', item)
return all
"""

_REMOVE = """
local item = KEYS[1]
local p, iid = ARGV[1], ARGV[2]
if redis.call('EXISTS', item) == 0 then return {} end
local all = redis.call('HGETALL', item)
local q = redis.call('HGET', item, 'queue')
local offered = redis.call('HGET', item, 'offered_to')
if offered then
  local agent = p .. 'agent:' .. offered
  local channel = redis.call('HGET', item, 'channel')
  if redis.call('HINCRBY', agent, 'load:' .. channel, -1) < 0 then
    redis.call('HSET', agent, 'load:' .. channel, 0)
  end
  redis.call('ZREM', p .. 'offers', iid)
end
redis.call('ZREM', p .. 'waiting:' .. q, iid)
redis.call('HINCRBY', p .. 'qsize', q, -1)
redis.call('DEL', item)
return all
"""

_MOVE = """
local item = KEYS[1]
local p, iid, q, priority, score, entered = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if redis.call('EXISTS', item) == 0 or redis.call('HEXISTS', item, 'offered_to') == 1 then
  return {}
end
local old = redis.call('HGET', item, 'queue')
redis.call('ZREM', p .. 'waiting:' .. old, iid)
redis.call('HINCRBY', p .. 'qsize', old, -1)
redis.call('HSET', item, 'queue', q, 'priority', priority, 'score', score,
           'queue_entered_at', entered, 'closed_told', '0')
redis.call('ZADD', p .. 'waiting:' .. q, score, iid)
redis.call('SADD', p .. 'queues', q)
redis.call('HINCRBY', p .. 'qsize', q, 1)
return redis.call('HGETALL', item)
"""

_FINISH = """
local agent = KEYS[1]
local channel, now, wrap = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', agent) == 0 then return 0 end
if redis.call('HINCRBY', agent, 'load:' .. channel, -1) < 0 then
  redis.call('HSET', agent, 'load:' .. channel, 0)
end
if wrap ~= '' then redis.call('HSET', agent, 'wrap_until', wrap) end
local fields = redis.call('HGETALL', agent)
local total = 0
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 5) == 'load:' then total = total + tonumber(fields[i + 1]) end
end
if total == 0 then
  if wrap ~= '' then redis.call('HSET', agent, 'idle_since', wrap)
  else redis.call('HSET', agent, 'idle_since', now) end
end
return 1
"""

_TEAM = """
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  out[#out + 1] = redis.call('HGETALL', ARGV[1] .. 'agent:' .. id)
end
return out
"""

_WAITING = """
local out = {}
local last = tonumber(ARGV[2])
for i = 3, #ARGV do
  for _, id in ipairs(redis.call('ZRANGE', ARGV[1] .. 'waiting:' .. ARGV[i], 0, last)) do
    out[#out + 1] = redis.call('HGETALL', ARGV[1] .. 'item:' .. id)
  end
end
return out
"""

_RING = """
local item = KEYS[1]
local p, iid, aid, expires = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('HGET', item, 'offered_to') ~= aid then return 0 end
redis.call('HSET', item, 'offer_expires', expires, 'rung', '1')
redis.call('ZADD', p .. 'offers', expires, iid)
return 1
"""

_TAKE_UNSEEN = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, 1000)
if #ids > 0 then redis.call('ZREM', KEYS[1], unpack(ids)) end
return ids
"""

_PRESENCE = """
local agent = KEYS[1]
local presence, reason, now = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', agent) == 0 then return 0 end
if presence == 'available' and redis.call('HGET', agent, 'presence') ~= 'available' then
  redis.call('HSET', agent, 'idle_since', now)
end
redis.call('HSET', agent, 'presence', presence, 'reason', reason, 'presence_since', now)
return 1
"""


def _ts(value: datetime | None) -> str:
    return "" if value is None else repr(value.timestamp())


def _dt(value: str | None) -> datetime | None:
    return None if not value else datetime.fromtimestamp(float(value), tz=UTC)


def _pairs(raw: list[str] | dict[str, str]) -> dict[str, str]:
    """A script's HGETALL answer ([k1, v1, k2, v2, ...]) as a dict."""
    if isinstance(raw, dict):
        return raw
    return dict(zip(raw[::2], raw[1::2], strict=True))


def _score(priority: int, enqueued_at: datetime) -> float:
    # Higher priority first, then the earliest place in line: one sortable number.
    return -priority * 1e10 + enqueued_at.timestamp()


class RedisRoutingState(RoutingState):
    """Routing state in one Redis server, shared by every hub process that points at it."""

    def __init__(self, url: str, *, prefix: str = "hub:routing:") -> None:
        self._url = url
        self._p = prefix
        self._redis: aioredis.Redis = connect(url)
        self._scripts = {
            name: self._redis.register_script(source)
            for name, source in {
                "add": _ADD_ITEM,
                "reserve": _RESERVE,
                "release": _RELEASE,
                "accept": _ACCEPT,
                "remove": _REMOVE,
                "move": _MOVE,
                "finish": _FINISH,
                "presence": _PRESENCE,
                "team": _TEAM,
                "waiting": _WAITING,
                "take_unseen": _TAKE_UNSEEN,
                "ring": _RING,
            }.items()
        }

    async def start(self) -> None:
        try:
            await self._redis.ping()
        except (aioredis.ConnectionError, OSError) as err:
            raise StoreError(f"HUB_REDIS_URL: Redis at {self._url} does not answer: {err}") from err

    async def close(self) -> None:
        await self._redis.aclose()

    async def clear(self) -> None:
        """Delete every key under the prefix (tests, and resetting before a rebuild)."""
        keys = [k async for k in self._redis.scan_iter(match=self._p + "*", count=1000)]
        for start in range(0, len(keys), 1000):
            await self._redis.delete(*keys[start : start + 1000])

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return await self._scripts[name](keys=keys, args=args)

    # -- agents ------------------------------------------------------------------------------

    def _agent_key(self, agent_id: int) -> str:
        return f"{self._p}agent:{agent_id}"

    async def put_agent(self, agent: AgentState) -> None:
        key = self._agent_key(agent.agent_id)
        old = await self._redis.hget(key, "profile")
        old_teams = set(json.loads(old)["teams"]) if old else set()
        fields: dict[str, str | int] = {
            "id": agent.agent_id,
            "profile": json.dumps(
                {
                    "teams": sorted(agent.teams),
                    "skills": agent.skills,
                    "languages": sorted(agent.languages),
                }
            ),
            "presence": agent.presence.value,
            "reason": agent.away_reason or "",
            "presence_since": _ts(agent.presence_since),
            "idle_since": _ts(agent.idle_since),
            "wrap_until": _ts(agent.wrap_up_until),
        }
        fields.update({f"cap:{c.value}": n for c, n in agent.capacity.items()})
        async with self._redis.pipeline(transaction=True) as pipe:
            stale = [str(f) for f in await self._redis.hkeys(key) if str(f).startswith("cap:")]
            if stale:
                pipe.hdel(key, *stale)
            pipe.hset(key, mapping=cast(Any, fields))  # redis-py types keys invariantly
            if not old:
                for channel, count in agent.load.items():
                    pipe.hset(key, f"load:{channel.value}", count)
            pipe.sadd(f"{self._p}agents", agent.agent_id)
            for team in old_teams - set(agent.teams):
                pipe.srem(f"{self._p}team:{team}", agent.agent_id)
            for team in agent.teams:
                pipe.sadd(f"{self._p}team:{team}", agent.agent_id)
            await pipe.execute()

    def _parse_agent(self, raw: dict[str, str]) -> AgentState | None:
        if not raw or "profile" not in raw:
            return None
        profile = json.loads(raw["profile"])
        presence_since = _dt(raw.get("presence_since"))
        idle_since = _dt(raw.get("idle_since"))
        assert presence_since is not None
        assert idle_since is not None
        return AgentState(
            agent_id=int(raw["id"]),
            teams=frozenset(profile["teams"]),
            presence=Presence(raw["presence"]),
            presence_since=presence_since,
            idle_since=idle_since,
            skills=dict(profile["skills"]),
            languages=frozenset(profile["languages"]),
            capacity={Channel(k[4:]): int(v) for k, v in raw.items() if k.startswith("cap:")},
            away_reason=raw.get("reason") or None,
            wrap_up_until=_dt(raw.get("wrap_until")),
            load={
                Channel(k[5:]): int(v) for k, v in raw.items() if k.startswith("load:") and int(v)
            },
        )

    async def _agents_by_id(self, ids: list[str]) -> list[AgentState]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for agent_id in ids:
                pipe.hgetall(self._agent_key(int(agent_id)))
            raws = await pipe.execute()
        return [a for a in (self._parse_agent(r) for r in raws) if a is not None]

    async def agent(self, agent_id: int) -> AgentState | None:
        raw = await cast(Awaitable[dict[str, str]], self._redis.hgetall(self._agent_key(agent_id)))
        return self._parse_agent(raw)

    async def agents(self, team: str | None = None) -> list[AgentState]:
        if team is None:
            key = f"{self._p}agents"
            ids = sorted(await cast(Awaitable[set[str]], self._redis.smembers(key)), key=int)
            return await self._agents_by_id(ids)
        # One script, one reply: a team is read on every routing decision.
        raws = await self._run("team", [f"{self._p}team:{team}"], [self._p])
        found = [self._parse_agent(_pairs(raw)) for raw in raws]
        return sorted((a for a in found if a is not None), key=lambda a: a.agent_id)

    async def set_presence(
        self, agent_id: int, presence: Presence, reason: str | None, now: datetime
    ) -> AgentState | None:
        key = self._agent_key(agent_id)
        reason_text = reason if presence is Presence.AWAY and reason else ""
        if not await self._run("presence", [key], [presence.value, reason_text, _ts(now)]):
            return None
        return await self.agent(agent_id)

    async def add_load(self, agent_id: int, channel: Channel, count: int) -> None:
        await self._redis.hincrby(self._agent_key(agent_id), f"load:{channel.value}", count)

    async def finish(
        self, agent_id: int, channel: Channel, now: datetime, wrap_up_until: datetime | None
    ) -> None:
        await self._run(
            "finish", [self._agent_key(agent_id)], [channel.value, _ts(now), _ts(wrap_up_until)]
        )

    # -- work --------------------------------------------------------------------------------

    def _item_key(self, interaction_id: int) -> str:
        return f"{self._p}item:{interaction_id}"

    async def add_item(self, item: WorkItem) -> bool:
        data = json.dumps(
            {
                "customer_id": item.customer_id,
                "language": item.language,
                "vip": item.vip,
                "tier": item.tier,
                "tags": sorted(item.tags),
                "last_agent_id": item.last_agent_id,
                "attributes": item.attributes,
            }
        )
        score = _score(item.priority, item.enqueued_at)
        excluded = "," + "".join(f"{a}:{_ts(at)}," for a, at in sorted(item.excluded.items()))
        fields = [
            "id", item.interaction_id, "data", data, "channel", item.channel.value,
            "queue", item.queue, "priority", item.priority, "score", repr(score),
            "enqueued_at", _ts(item.enqueued_at), "queue_entered_at", _ts(item.queue_entered_at),
            "excluded", excluded, "closed_told", "1" if item.closed_told else "0",
        ]  # fmt: skip
        added = await self._run(
            "add", [self._item_key(item.interaction_id)], [self._p, item.queue, score, *fields]
        )
        return bool(added)

    @staticmethod
    def _parse_item(raw: dict[str, str] | list[str]) -> WorkItem | None:
        raw = _pairs(raw)
        if not raw:
            return None
        data = json.loads(raw["data"])
        enqueued_at = _dt(raw["enqueued_at"])
        entered = _dt(raw["queue_entered_at"])
        assert enqueued_at is not None
        assert entered is not None
        return WorkItem(
            interaction_id=int(raw["id"]),
            customer_id=int(data["customer_id"]),
            channel=Channel(raw["channel"]),
            queue=raw["queue"],
            priority=int(raw["priority"]),
            enqueued_at=enqueued_at,
            queue_entered_at=entered,
            language=data["language"],
            vip=bool(data["vip"]),
            tier=data["tier"],
            tags=frozenset(data["tags"]),
            last_agent_id=data["last_agent_id"],
            excluded=_excluded(raw.get("excluded", ",")),
            offered_to=int(raw["offered_to"]) if raw.get("offered_to") else None,
            offer_expires=_dt(raw.get("offer_expires")),
            closed_told=raw.get("closed_told") == "1",
            rung=raw.get("rung") == "1",
            attributes=dict(data["attributes"]),
        )

    async def item(self, interaction_id: int) -> WorkItem | None:
        key = self._item_key(interaction_id)
        return self._parse_item(await cast(Awaitable[dict[str, str]], self._redis.hgetall(key)))

    async def _items(self, ids: list[str]) -> list[WorkItem]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for interaction_id in ids:
                pipe.hgetall(self._item_key(int(interaction_id)))
            raws = await pipe.execute()
        return [i for i in (self._parse_item(r) for r in raws) if i is not None]

    async def waiting(
        self, queues: frozenset[str] | None = None, *, limit: int | None = None
    ) -> list[WorkItem]:
        if queues is None:
            queues = frozenset(
                await cast(Awaitable[set[str]], self._redis.smembers(f"{self._p}queues"))
            )
        # A script per 50 queues: few round trips, yet no script blocks Redis for long.
        names = sorted(queues)
        raws: list[Any] = []
        for start in range(0, len(names), 50):
            last = -1 if limit is None else limit - 1
            raws += await self._run("waiting", [], [self._p, last, *names[start : start + 50]])
        items = [self._parse_item(raw) for raw in raws]
        return sorted(
            (i for i in items if i is not None and i.offered_to is None), key=WorkItem.sort_key
        )

    async def queue_sizes(self) -> dict[str, int]:
        raw = await cast(Awaitable[dict[str, str]], self._redis.hgetall(f"{self._p}qsize"))
        return {queue: int(n) for queue, n in raw.items() if int(n) > 0}

    async def remove_item(self, interaction_id: int) -> WorkItem | None:
        raw = await self._run("remove", [self._item_key(interaction_id)], [self._p, interaction_id])
        return self._parse_item(raw)

    async def move_item(
        self, interaction_id: int, queue: str, priority: int, now: datetime
    ) -> WorkItem | None:
        current = await self.item(interaction_id)
        if current is None:
            return None
        score = _score(priority, current.enqueued_at)
        raw = await self._run(
            "move",
            [self._item_key(interaction_id)],
            [self._p, interaction_id, queue, priority, repr(score), _ts(now)],
        )
        return self._parse_item(raw)

    async def mark_closed_told(self, interaction_id: int) -> None:
        key = self._item_key(interaction_id)
        if await self._redis.exists(key):
            await self._redis.hset(key, "closed_told", "1")

    # -- offers ------------------------------------------------------------------------------

    async def reserve(
        self,
        interaction_id: int,
        agent_id: int,
        expires_at: datetime,
        limits: Limits,
        now: datetime,
        *,
        again: bool = False,
    ) -> bool:
        item = await self._redis.hget(self._item_key(interaction_id), "channel")
        if item is None:
            return False
        default_cap = limits.capacity.get(Channel(str(item)), 1)
        reserved = await self._run(
            "reserve",
            [self._item_key(interaction_id), self._agent_key(agent_id)],
            [
                self._p,
                interaction_id,
                agent_id,
                _ts(expires_at),
                _ts(now),
                default_cap,
                "1" if limits.voice_exclusive else "0",
                "1" if again else "0",
            ],
        )
        return bool(reserved)

    async def release_offer(
        self, interaction_id: int, agent_id: int, *, exclude: bool, now: datetime
    ) -> WorkItem | None:
        raw = await self._run(
            "release",
            [self._item_key(interaction_id), self._agent_key(agent_id)],
            [self._p, interaction_id, agent_id, "1" if exclude else "0", _ts(now)],
        )
        return self._parse_item(raw)

    async def ring(self, interaction_id: int, agent_id: int, until: datetime) -> bool:
        rung = await self._run(
            "ring",
            [self._item_key(interaction_id)],
            [self._p, interaction_id, agent_id, repr(until.timestamp())],
        )
        return bool(rung)

    async def accept(self, interaction_id: int, agent_id: int) -> WorkItem | None:
        raw = await self._run(
            "accept", [self._item_key(interaction_id)], [self._p, interaction_id, agent_id]
        )
        return self._parse_item(raw)

    async def expired_offers(self, now: datetime) -> list[WorkItem]:
        ids = await self._redis.zrangebyscore(f"{self._p}offers", "-inf", now.timestamp())
        return await self._items([str(i) for i in ids])

    async def set_load(self, agent_id: int, channel: Channel, count: int) -> None:
        await self._redis.hset(self._agent_key(agent_id), f"load:{channel.value}", max(0, count))

    async def claim_duty(self, name: str, seconds: float) -> bool:
        claimed = await self._redis.set(
            f"{self._p}duty:{name}", self._url, nx=True, px=max(1, int(seconds * 1000))
        )
        return bool(claimed)

    async def claim_rebuild(self) -> bool:
        return bool(await self._redis.set(f"{self._p}built", self._url, nx=True))

    # -- agents' connections -----------------------------------------------------------------

    async def seen(self, agent_ids: Collection[int], now: datetime) -> None:
        if agent_ids:
            stamp = now.timestamp()
            await self._redis.zadd(f"{self._p}seen", dict.fromkeys(map(str, agent_ids), stamp))

    async def take_unseen(self, before: datetime) -> list[int]:
        lost: list[int] = []
        while True:
            ids = await self._run("take_unseen", [f"{self._p}seen"], [repr(before.timestamp())])
            lost += [int(i) for i in ids]
            if len(ids) < 1000:
                return lost


def _excluded(raw: str) -> dict[int, datetime]:
    """ ",1:ts,5:ts," as {1: when, 5: when} (the latest time where one agent passed twice)."""
    found: dict[int, datetime] = {}
    for part in raw.split(","):
        agent, _, stamp = part.partition(":")
        if agent:
            found[int(agent)] = _dt(stamp) or datetime.fromtimestamp(0, tz=UTC)
    return found
