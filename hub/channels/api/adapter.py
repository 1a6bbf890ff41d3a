"""The API channel adapter: inbound only, over the hub's own authenticated HTTP API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import ClassVar

from aiohttp import web

from hub.channels.api.inbound import ApiInbound, to_inbound_message
from hub.channels.base import (
    Capability,
    ChannelAdapter,
    DeliveryReceipt,
    OutboundMessage,
)
from hub.domain.interaction import Channel
from hub.domain.users import Permission
from hub.errors import ChannelConfigError
from hub.http import json_response, read_json, requires


class ApiChannel(ChannelAdapter):
    """Contacts pushed in by other systems (a web form, a CRM, a shop)."""

    channel: ClassVar[Channel] = Channel.API
    # The pushing system owns the way back to its customer; the hub cannot reply here.
    capabilities: ClassVar[Capability] = Capability.NONE

    def __init__(self, default_region: str, clock: Callable[[], datetime]) -> None:
        self._default_region = default_region
        self._clock = clock

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        raise ChannelConfigError(
            "the API channel has no way back to the customer; reply on another channel",
            interaction_id=message.interaction_id,
        )

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/api/v1/inbound", self.handle_inbound)]

    @requires(Permission.INBOUND_PUSH)
    async def handle_inbound(self, request: web.Request) -> web.Response:
        """Take one contact; 201 when stored, 200 when it repeats an earlier provider_ref."""
        payload = await read_json(request, ApiInbound)
        message = to_inbound_message(
            payload, default_region=self._default_region, now=self._clock()
        )
        received = await self.sink()(message)
        return json_response(
            {
                "customer_id": received.customer_id,
                "interaction_id": received.interaction_id,
                "event_id": received.event_id,
                "duplicate": received.duplicate,
                "created_customer": received.created_customer,
                "opened_interaction": received.opened_interaction,
            },
            status=200 if received.duplicate else 201,
        )
