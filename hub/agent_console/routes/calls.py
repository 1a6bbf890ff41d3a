"""Phone calls over HTTP: join, hold, mute, transfer, leave, hang up, monitor, click-to-call.

``to`` names where the hub rings the person acting: ``"browser"`` (the default: the console's
Twilio Voice SDK, as ``client:agent-7``) or a phone number of theirs.
"""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hub.domain.calls import CallLeg, MonitorMode
from hub.domain.users import Permission
from hub.errors import ChannelNotReady
from hub.http import HUB, Id, json_response, path_id, principal_of, read_json, requires
from hub.services.calls import CallService

routes = web.RouteTableDef()
CALL = r"/api/v1/interactions/{interaction_id:\d+}/call"
To = Field(default=None, min_length=1, max_length=40)


class JoinBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str | None = To


class SwitchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on: bool = True


class TransferBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queue: str | None = Field(default=None, min_length=1, max_length=100)
    agent_id: Id | None = None
    number: str | None = Field(default=None, min_length=1, max_length=40)
    mode: Literal["cold", "warm"] = "cold"


class MonitorBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: MonitorMode
    to: str | None = To


class PlaceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: str | None = Field(default=None, min_length=1, max_length=40)
    to: str | None = To


def _calls(request: web.Request) -> CallService:
    calls = request.app[HUB].calls
    if calls is None:
        raise ChannelNotReady("phone calls are not set up: HUB_TWILIO__AUTH_TOKEN is not set")
    return calls


def _interaction(request: web.Request) -> int:
    return path_id(request, "interaction_id")


def leg_json(leg: CallLeg) -> dict[str, Any]:
    return {
        "call_sid": leg.call_sid,
        "role": leg.role.value,
        "user_id": leg.user_id,
        "number": leg.number,
        "status": leg.status,
        "live": leg.live,
        "muted": leg.muted,
        "held": leg.held,
        "monitor": leg.monitor.value if leg.monitor else None,
        "created_at": leg.created_at,
        "answered_at": leg.answered_at,
        "ended_at": leg.ended_at,
    }


@routes.get("/api/v1/calls")
@requires(Permission.CALLS_MONITOR)
async def calls_now(request: web.Request) -> web.Response:
    """Calls going on now (supervisors): the interaction, its agent and who is on the line."""
    found = await _calls(request).calls_now(principal_of(request))
    return json_response(
        {
            "calls": [
                {
                    "interaction_id": interaction.id,
                    "customer_id": interaction.customer_id,
                    "agent_id": interaction.assigned_user_id,
                    "state": interaction.state.value,
                    "legs": [leg_json(leg) for leg in legs],
                }
                for interaction, legs in found
            ]
        }
    )


@routes.get(CALL)
@requires(Permission.TIMELINE_READ)
async def call_legs(request: web.Request) -> web.Response:
    """Who is (and was) on the call, with hold, mute and monitoring state."""
    legs = await _calls(request).legs(principal_of(request), _interaction(request))
    return json_response({"legs": [leg_json(leg) for leg in legs]})


@routes.post(CALL + "/join")
@requires(Permission.WORK_TAKE)
async def join(request: web.Request) -> web.Response:
    """Ring me into the call assigned to me (a callback rings the customer too)."""
    body = await read_json(request, JoinBody)
    leg = await _calls(request).join(principal_of(request), _interaction(request), body.to)
    return json_response(leg_json(leg), status=201)


@routes.post(CALL + "/hold")
@requires(Permission.WORK_TAKE)
async def hold(request: web.Request) -> web.Response:
    """Put the customer on hold ({"on": true}) or take them off it."""
    body = await read_json(request, SwitchBody)
    await _calls(request).hold(principal_of(request), _interaction(request), body.on)
    return web.Response(status=204)


@routes.post(CALL + "/mute")
@requires(Permission.WORK_TAKE)
async def mute(request: web.Request) -> web.Response:
    """Mute ({"on": true}) or unmute my leg."""
    body = await read_json(request, SwitchBody)
    await _calls(request).mute(principal_of(request), _interaction(request), body.on)
    return web.Response(status=204)


@routes.post(CALL + "/transfer")
@requires(Permission.WORK_TAKE)
async def transfer(request: web.Request) -> web.Response:
    """Transfer to a queue, an agent or a number; cold (I leave now) or warm (I stay)."""
    body = await read_json(request, TransferBody)
    leg = await _calls(request).transfer(
        principal_of(request),
        _interaction(request),
        queue=body.queue,
        agent_id=body.agent_id,
        number=body.number,
        warm=body.mode == "warm",
    )
    if leg is None:
        return web.Response(status=204)
    return json_response(leg_json(leg), status=201)


@routes.post(CALL + "/leave")
@requires(Permission.WORK_TAKE)
async def leave(request: web.Request) -> web.Response:
    """Drop off the call; the others stay connected."""
    await _calls(request).leave(principal_of(request), _interaction(request))
    return web.Response(status=204)


@routes.post(CALL + "/hangup")
@requires(Permission.WORK_TAKE)
async def hang_up(request: web.Request) -> web.Response:
    """End the call for everyone; the interaction goes to wrap-up."""
    await _calls(request).hang_up(principal_of(request), _interaction(request))
    return web.Response(status=204)


@routes.post(CALL + "/monitor")
@requires(Permission.CALLS_MONITOR)
async def monitor(request: web.Request) -> web.Response:
    """Supervisors: listen, whisper (coach the agent) or barge in; again to change mode."""
    body = await read_json(request, MonitorBody)
    leg = await _calls(request).monitor(
        principal_of(request), _interaction(request), body.mode, body.to
    )
    return json_response(leg_json(leg), status=201)


@routes.post(r"/api/v1/customers/{customer_id:\d+}/call")
@requires(Permission.WORK_TAKE)
async def place_call(request: web.Request) -> web.Response:
    """Click-to-call: ring me, then the customer (their newest phone number, or ``number``)."""
    body = await read_json(request, PlaceBody)
    interaction_id = await _calls(request).place_call(
        principal_of(request),
        path_id(request, "customer_id"),
        number=body.number,
        to=body.to,
    )
    return json_response({"interaction_id": interaction_id}, status=201)
