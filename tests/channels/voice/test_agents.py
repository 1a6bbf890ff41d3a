"""Agents on calls in the browser: Voice tokens, and joining the caller's conference."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from xml.etree import ElementTree

import jwt
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from hub.bootstrap import Hub
from hub.dev.twilio_sim import TwilioSimulator
from tests.channels.sms.conftest import ACCOUNT, OUR_NUMBER
from tests.conftest import make_team

Client = TestClient[Any, Any]
KEY_SECRET = "key-secret-for-tests-0123456789ab"


def set_up_browser_calls(hub: Hub) -> None:
    twilio = hub.settings.twilio
    twilio.api_key_sid, twilio.twiml_app_sid = "SKtest", "APtest"
    twilio.api_key_secret = SecretStr(KEY_SECRET)


async def test_agents_get_a_voice_token_for_our_twiml_app(sms_hub: Hub, client: Client) -> None:
    team = await make_team(sms_hub, "support")
    response = await client.get("/api/v1/me/voice-token", headers=team.headers("agent"))
    assert response.status == 503  # not set up yet: says what is missing
    assert "HUB_TWILIO__API_KEY_SID" in (await response.json())["error"]["message"]
    set_up_browser_calls(sms_hub)
    response = await client.get("/api/v1/me/voice-token", headers=team.headers("agent"))
    assert response.status == 200
    issued = await response.json()
    claims = jwt.decode(
        issued["token"],
        KEY_SECRET,
        algorithms=["HS256"],
        options={"verify_exp": False, "verify_nbf": False},
    )
    assert (claims["iss"], claims["sub"]) == ("SKtest", ACCOUNT)
    assert claims["grants"]["identity"] == f"agent-{team.user_ids['agent']}"
    assert claims["grants"]["voice"]["outgoing"]["application_sid"] == "APtest"
    assert claims["grants"]["voice"]["incoming"]["allow"] is True
    assert claims["exp"] == int(datetime.fromisoformat(issued["expires_at"]).timestamp())
    response = await client.get("/api/v1/me/voice-token", headers=team.headers("marketer"))
    assert response.status == 403


async def test_only_the_assigned_agent_joins_the_callers_conference(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    team = await make_team(sms_hub, "support")
    await twilio.voice.start_call(caller="+14155550123", to=OUR_NUMBER, sid="CA7")
    agent = team.headers("agent")
    await client.post("/api/v1/me/state", json={"state": "available"}, headers=agent)
    offers = (await (await client.get("/api/v1/me/offers", headers=agent)).json())["offers"]
    interaction = offers[0]["interaction_id"]
    assert (
        await client.post(f"/api/v1/interactions/{interaction}/accept", headers=agent)
    ).status == 204

    async def join(user_id: int) -> ElementTree.Element:
        params = {
            "CallSid": "CAagent",
            "AccountSid": ACCOUNT,
            "From": f"client:agent-{user_id}",
            "To": "",
            "interaction": str(interaction),
        }
        headers = {
            "X-Twilio-Signature": twilio.signature(
                twilio.public_url + "/webhooks/twilio/voice/agent", params
            )
        }
        response = await client.post("/webhooks/twilio/voice/agent", data=params, headers=headers)
        assert response.status == 200
        return ElementTree.fromstring(await response.text())

    joined = await join(team.user_ids["agent"])
    conference = joined.find("Dial/Conference")
    assert conference is not None
    assert conference.text == f"interaction-{interaction}"
    assert conference.get("startConferenceOnEnter") == "true"
    refused = await join(team.user_ids["supervisor"])
    assert refused.findtext("Say") == "That call is not assigned to you."
    assert refused.find("Dial") is None
    response = await client.post(
        "/webhooks/twilio/voice/agent",
        data={"From": "client:agent-1"},
        headers={"X-Twilio-Signature": "forged"},
    )
    assert response.status == 403
