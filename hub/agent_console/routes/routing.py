"""The ACD over HTTP: agent state and offers, queues and their statistics, agents, reload."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from aiohttp import web
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from hub.agent_console.presenters import interaction_json
from hub.channels.voice.agents import voice_token
from hub.crm_store.accounts import User
from hub.crm_store.unit_of_work import UnitOfWork
from hub.domain.interaction import Channel
from hub.domain.users import Permission, Principal
from hub.errors import NotFound, ValidationError
from hub.http import HUB, Id, json_response, path_id, principal_of, query_int, read_json, requires
from hub.routing.model import CHOSEN_PRESENCES, AgentState, Presence, WorkItem
from hub.routing.reports import queue_report
from hub.routing.service import RoutingService
from hub.services import interactions

routes = web.RouteTableDef()

Skill = Annotated[str, StringConstraints(min_length=1, max_length=64)]


def _chosen(presence: Presence) -> Presence:
    if presence not in CHOSEN_PRESENCES:
        raise ValueError(
            "routing sets missed when an offer rings out: choose available, away or offline"
        )
    return presence


class StateBody(BaseModel):
    """A presence an agent (or their supervisor) chooses, on the API and the /agent socket."""

    model_config = ConfigDict(extra="forbid")

    state: Annotated[Presence, AfterValidator(_chosen)]
    reason: str | None = Field(default=None, max_length=100)


class TransferBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queue: str | None = Field(default=None, min_length=1, max_length=100)
    agent_id: Id | None = None


class ProfileBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    skills: dict[Skill, Annotated[int, Field(ge=1, le=5)]] = Field(default_factory=dict)
    languages: list[Annotated[str, StringConstraints(min_length=2, max_length=16)]] = Field(
        default_factory=list, max_length=20
    )
    capacity: dict[Channel, Annotated[int, Field(ge=0, le=50)]] = Field(default_factory=dict)


def routing_of(request: web.Request) -> RoutingService:
    """The running hub's ACD (404 where routing does not run)."""
    routing = request.app[HUB].routing
    if routing is None:
        raise NotFound("routing is not running in this hub")
    return routing


def agent_json(agent: AgentState, now: Any) -> dict[str, Any]:
    return {
        "id": agent.agent_id,
        "presence": agent.presence.value,
        "activity": agent.activity(now).value,
        "reason": agent.away_reason,
        "since": agent.presence_since,
        "idle_since": agent.idle_since,
        "wrap_up_until": agent.wrap_up_until,
        "teams": sorted(agent.teams),
        "skills": agent.skills,
        "languages": sorted(agent.languages),
        "capacity": {c.value: n for c, n in agent.capacity.items()},
        "load": {c.value: n for c, n in agent.load.items()},
    }


def offer_json(item: WorkItem) -> dict[str, Any]:
    return {
        "interaction_id": item.interaction_id,
        "customer_id": item.customer_id,
        "channel": item.channel.value,
        "queue": item.queue,
        "expires_at": item.offer_expires,
        "waiting_since": item.enqueued_at,
    }


# -- the agent ------------------------------------------------------------------------------


@routes.post("/api/v1/me/state")
@requires(Permission.WORK_TAKE)
async def set_state(request: web.Request) -> web.Response:
    """Go available, away (with a reason) or offline."""
    body = await read_json(request, StateBody)
    agent = await routing_of(request).set_presence(principal_of(request), body.state, body.reason)
    return json_response(agent_json(agent, request.app[HUB].clock()))


@routes.get("/api/v1/me/offers")
@requires(Permission.WORK_TAKE)
async def my_offers(request: web.Request) -> web.Response:
    """The work ringing at me now."""
    offers = await routing_of(request).offers_for(principal_of(request).user_id)
    return json_response({"offers": [offer_json(o) for o in offers]})


@routes.get("/api/v1/me/interactions")
@requires(Permission.WORK_TAKE)
async def my_interactions(request: web.Request) -> web.Response:
    """My open work (assigned to me, or in my wrap-up): what the console reopens after a reload."""
    held = await interactions.my_work(request.app[HUB].store, principal_of(request))
    return json_response({"interactions": [interaction_json(i) for i in held]})


async def _act(request: web.Request, action: str) -> web.Response:
    routing = routing_of(request)
    principal = principal_of(request)
    interaction_id = path_id(request, "interaction_id")
    if action == "accept":
        await routing.accept(principal, interaction_id)
    elif action == "decline":
        await routing.decline(principal, interaction_id)
    else:
        await routing.end(principal, interaction_id)
    return web.Response(status=204)


@routes.post(r"/api/v1/interactions/{interaction_id:\d+}/accept")
@requires(Permission.WORK_TAKE)
async def accept(request: web.Request) -> web.Response:
    """Take the work offered to me (409 if it is not, or no longer, mine to take)."""
    return await _act(request, "accept")


@routes.post(r"/api/v1/interactions/{interaction_id:\d+}/decline")
@requires(Permission.WORK_TAKE)
async def decline(request: web.Request) -> web.Response:
    """Pass on the work offered to me; it goes to the next agent."""
    return await _act(request, "decline")


@routes.post(r"/api/v1/interactions/{interaction_id:\d+}/end")
@requires(Permission.WORK_TAKE)
async def end(request: web.Request) -> web.Response:
    """Finish talking: the interaction goes to wrap-up and my capacity is freed."""
    return await _act(request, "end")


@routes.post(r"/api/v1/interactions/{interaction_id:\d+}/transfer")
@requires(Permission.WORK_TAKE)
async def transfer(request: web.Request) -> web.Response:
    """Hand my work to a queue or to a colleague."""
    body = await read_json(request, TransferBody)
    await routing_of(request).transfer(
        principal_of(request),
        path_id(request, "interaction_id"),
        queue=body.queue,
        agent_id=body.agent_id,
    )
    return web.Response(status=204)


class MoveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queue: str = Field(min_length=1, max_length=100)


@routes.post(r"/api/v1/interactions/{interaction_id:\d+}/move")
@requires(Permission.AGENTS_MANAGE)
async def move(request: web.Request) -> web.Response:
    """Supervisors: move waiting work to another queue; it keeps its place in line."""
    hub = request.app[HUB]
    body = await read_json(request, MoveBody)
    interaction_id = path_id(request, "interaction_id")
    await interactions.get_interaction(hub.store, principal_of(request), interaction_id)
    item = await routing_of(request).move(principal_of(request), interaction_id, body.queue)
    return json_response({"interaction_id": interaction_id, "queue": item.queue})


@routes.get("/api/v1/me/voice-token")
@requires(Permission.WORK_TAKE)
async def my_voice_token(request: web.Request) -> web.Response:
    """A Twilio Voice SDK token for my browser (503 if calls in the browser are not set up)."""
    hub = request.app[HUB]
    issued = voice_token(hub.settings, principal_of(request).user_id, hub.clock())
    return json_response(
        {"token": issued.token, "identity": issued.identity, "expires_at": issued.expires_at}
    )


# -- supervisors ----------------------------------------------------------------------------


def _windows(request: web.Request) -> tuple[int, ...]:
    raw = request.query.get("windows", "15,30,60")
    try:
        windows = tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError as err:
        raise ValidationError("windows is a list of minutes, e.g. 15,30,60") from err
    if not windows or any(not 1 <= w <= 24 * 60 for w in windows) or len(windows) > 6:
        raise ValidationError("windows: up to 6 values, each 1-1440 minutes", field="windows")
    return windows


@routes.get("/api/v1/queues")
@requires(Permission.QUEUES_READ)
async def queues(request: web.Request) -> web.Response:
    """Every queue with live figures and the last 15 minutes, and the totals."""
    routing = routing_of(request)
    reports = [
        await queue_report(routing, q, windows=(15,), interval_minutes=None, interval_count=0)
        for q in routing.policy.queues.values()
    ]
    totals = {
        "waiting": sum(r["live"]["waiting"] for r in reports),
        "ringing": sum(r["live"]["ringing"] for r in reports),
        "oldest_wait_seconds": max(
            (r["live"]["oldest_wait_seconds"] or 0 for r in reports), default=0
        ),
        "offered_15m": sum(r["windows"]["15m"]["offered"] for r in reports),
        "answered_15m": sum(r["windows"]["15m"]["answered"] for r in reports),
        "abandoned_15m": sum(r["windows"]["15m"]["abandoned"] for r in reports),
    }
    return json_response({"queues": reports, "overall": totals})


@routes.get("/api/v1/routing/health")
@requires(Permission.QUEUES_READ)
async def routing_health(request: web.Request) -> web.Response:
    """Whether routing keeps up: events not yet handled, work a free agent could take waiting
    long, and what the last reconciliation mended (checked every few seconds)."""
    upkeep = routing_of(request).upkeep
    health = upkeep.health or await upkeep.check()
    return json_response(health.as_dict())


@routes.get(r"/api/v1/queues/{queue_id:\d+}/stats")
@requires(Permission.QUEUES_READ)
async def queue_stats(request: web.Request) -> web.Response:
    """Live figures, rolling windows (?windows=15,30,60) and intervals (?interval=15&count=8).

    ?format=csv gives the intervals as CSV.
    """
    routing = routing_of(request)
    name = routing.queue_name(path_id(request, "queue_id"))
    policy = routing.policy
    if name is None or name not in policy.queues:
        raise NotFound(f"no queue {request.match_info['queue_id']}")
    interval = request.query.get("interval")
    if interval is not None and interval not in ("15", "30", "60"):
        raise ValidationError("interval is 15, 30 or 60 minutes", field="interval")
    count = query_int(request, "count", 8, low=1, high=96)
    report = await queue_report(
        routing,
        policy.queues[name],
        windows=_windows(request),
        interval_minutes=int(interval) if interval else None,
        interval_count=count,
    )
    if request.query.get("format") == "csv":
        if "intervals" not in report:
            raise ValidationError("format=csv needs interval=15|30|60", field="format")
        return _csv(report["intervals"], name)
    return json_response(report)


def _csv(rows: list[dict[str, Any]], queue: str) -> web.Response:
    out = io.StringIO()
    fields = [
        "start",
        "end",
        "offered",
        "answered",
        "abandoned",
        "answered_in_sla",
        "service_level",
        "asa_seconds",
        "aht_seconds",
        "rated",
        "csat_average",
    ]
    writer = csv.DictWriter(out, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {k: row[k].isoformat() if hasattr(row[k], "isoformat") else row[k] for k in fields}
        )
    response = web.Response(text=out.getvalue(), content_type="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{queue}-intervals.csv"'
    return response


@routes.get("/api/v1/agents")
@requires(Permission.AGENTS_READ)
async def agents(request: web.Request) -> web.Response:
    """The agents of my teams (admins: every agent), with presence, activity and load."""
    routing = routing_of(request)
    hub = request.app[HUB]
    now = hub.clock()
    principal = principal_of(request)
    async with hub.store.unit_of_work() as uow:
        profiles = await uow.accounts.agent_profiles()
    found = [
        routing.agent_state(p, await routing.state.agent(p.user.id))
        for p in profiles
        if principal.sees_everything or p.user.team_ids & principal.team_ids
    ]
    return json_response({"agents": [agent_json(a, now) for a in found]})


async def _team_user(uow: UnitOfWork, principal: Principal, user_id: int) -> User:
    """A user of the caller's teams (admins: anyone); NotFound otherwise, as for no user."""
    user = await uow.accounts.user(user_id)
    if user is None or not (principal.sees_everything or user.team_ids & principal.team_ids):
        raise NotFound(f"no user {user_id}")
    return user


@routes.post(r"/api/v1/agents/{user_id:\d+}/state")
@requires(Permission.AGENTS_MANAGE)
async def set_agent_state(request: web.Request) -> web.Response:
    """A supervisor sets an agent of their teams away or offline (or available); audited."""
    hub = request.app[HUB]
    body = await read_json(request, StateBody)
    user_id = path_id(request, "user_id")
    principal = principal_of(request)
    async with hub.store.unit_of_work() as uow:
        user = await _team_user(uow, principal, user_id)
        uow.audit.add(
            at=hub.clock(),
            actor_id=principal.user_id,
            action="agent.state",
            entity_type="user",
            entity_id=user_id,
            state=body.state.value,
            reason=body.reason,
        )
        await uow.commit()
    agent = await routing_of(request).set_presence(user.principal(), body.state, body.reason)
    return json_response(agent_json(agent, hub.clock()))


@routes.put(r"/api/v1/agents/{user_id:\d+}/profile")
@requires(Permission.AGENTS_MANAGE)
async def set_profile(request: web.Request) -> web.Response:
    """Set an agent's skills (1-5), languages and capacity per channel."""
    hub = request.app[HUB]
    body = await read_json(request, ProfileBody)
    user_id = path_id(request, "user_id")
    principal = principal_of(request)
    async with hub.store.unit_of_work() as uow:
        await _team_user(uow, principal, user_id)
        await uow.accounts.set_agent_profile(
            user_id,
            skills=dict(body.skills),
            languages=sorted(set(body.languages)),
            capacity={c.value: n for c, n in body.capacity.items()},
            now=hub.clock(),
        )
        uow.audit.add(
            at=hub.clock(),
            actor_id=principal.user_id,
            action="agent.profile",
            entity_type="user",
            entity_id=user_id,
            skills=dict(body.skills),
            capacity={c.value: n for c, n in body.capacity.items()},
        )
        await uow.commit()
    routing = routing_of(request)
    await routing.refresh_agent(user_id)
    agent = await routing.state.agent(user_id)
    if agent is None:
        raise ValidationError(f"user {user_id} is not an active agent or supervisor")
    return json_response(agent_json(agent, hub.clock()))
