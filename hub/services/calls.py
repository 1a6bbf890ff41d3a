"""Phone calls' use cases: joining, holding, muting, transferring, monitoring and ending them,
and what the provider's webhooks tell of them.

Every call is a conference named for its interaction, and each party on it is a leg kept in the
store by CallSid (``hub.domain.calls``). The service decides and keeps; the voice channel's
edge (``hub.channels.voice.outbound.TwilioConference``) only carries out, through the
``Conference`` port, what the provider must do. Status callbacks of every leg (ringing,
answered, completed, with the duration) go on the interaction's timeline, and a customer's
hang-up ends the work it ends.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from hub.config import Settings
from hub.crm_store.unit_of_work import Store, UnitOfWork
from hub.domain.calls import ENDED, ENDING, CallLeg, LegRole, MonitorMode
from hub.domain.events import AttachmentsOwed
from hub.domain.identity import IdentityKind, normalize_phone
from hub.domain.interaction import Channel, Interaction, InteractionState
from hub.domain.timeline import Attachment, Direction, EventKind, TimelineEvent
from hub.domain.users import Permission, Principal
from hub.errors import (
    ChannelConfigError,
    ChannelNotReady,
    Conflict,
    HubError,
    InvalidIdentity,
    ValidationError,
)
from hub.services.customers import visible_customer
from hub.services.interactions import visible_interaction

if TYPE_CHECKING:
    from hub.routing.service import RoutingService

S = InteractionState
log = structlog.get_logger(__name__)
WAITING = frozenset({S.NEW, S.QUEUED, S.OFFERED})
# A caller who left a voicemail or asked to be called back is still owed a call.
KEPT_MARKS = ("voicemail", "callback")
PROVIDER = "twilio"


@dataclass(frozen=True, slots=True)
class Dialled:
    """A leg the provider started: its call, and the conference's sid if it is known yet."""

    call_sid: str
    conference_sid: str | None


class Conference(Protocol):
    """What the call service asks of the provider's conferences (the voice channel's edge)."""

    def browser(self, user_id: int) -> str:
        """The address that rings a person's browser."""
        ...

    def own_number(self) -> str | None:
        """A number of ours to call from when no call says which."""
        ...

    async def dial(
        self,
        interaction_id: int,
        *,
        to: str,
        role: LegRole,
        caller_id: str,
        monitor: MonitorMode | None = None,
        coach: str | None = None,
        record: bool = False,
    ) -> Dialled:
        """Ring someone into the interaction's conference."""
        ...

    async def hold(self, conference_sid: str, call_sid: str, on: bool) -> None:
        """Put a participant on hold (they hear music), or take them off it."""
        ...

    async def mute(self, conference_sid: str, call_sid: str, on: bool) -> None:
        """Mute or unmute a participant."""
        ...

    async def monitor(
        self, conference_sid: str, call_sid: str, mode: MonitorMode, coach: str | None
    ) -> None:
        """Change how a supervisor is on the call."""
        ...

    async def remove(self, conference_sid: str, call_sid: str) -> None:
        """Take a participant off the call (their call ends)."""
        ...

    async def end(self, conference_sid: str) -> None:
        """Hang up everyone on the conference."""
        ...

    async def find(self, interaction_id: int) -> str | None:
        """The sid of the interaction's conference going on now, if any."""
        ...

    async def call_status(self, call_sid: str) -> tuple[str, int | None]:
        """A call's status and duration (seconds) as the provider has them now."""
        ...

    async def close(self) -> None:
        """Release the provider client's connections."""
        ...


class CallService:
    """Joins, holds, mutes, transfers, monitors and ends the hub's calls, and keeps their legs."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        routing: RoutingService | None,
        conference: Conference,
        clock: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self._store = store
        self._routing = routing
        self.conference = conference
        self._clock = clock

    async def close(self) -> None:
        await self.conference.close()

    # -- reading -------------------------------------------------------------------------------

    async def legs(self, principal: Principal, interaction_id: int) -> list[CallLeg]:
        """Every leg of a call the caller may see, oldest first."""
        principal.require(Permission.TIMELINE_READ)
        async with self._store.reading() as uow:
            interaction = await visible_interaction(uow, principal, interaction_id)
            return await uow.calls.of_interaction(interaction.id)

    async def calls_now(self, principal: Principal) -> list[tuple[Interaction, list[CallLeg]]]:
        """Calls with someone on them now, among the customers the caller may see."""
        principal.require(Permission.CALLS_MONITOR)
        found: list[tuple[Interaction, list[CallLeg]]] = []
        async with self._store.reading() as uow:
            legs = await uow.calls.live()
            for interaction_id in dict.fromkeys(leg.interaction_id for leg in legs):
                try:
                    interaction = await visible_interaction(uow, principal, interaction_id)
                except HubError:
                    continue
                found.append((interaction, [x for x in legs if x.interaction_id == interaction_id]))
        return found

    async def _call(
        self, principal: Principal, interaction_id: int, *, mine: bool = True
    ) -> tuple[Interaction, list[CallLeg]]:
        """A phone call the caller may act on (assigned to them, if ``mine``), and its legs."""
        principal.require(Permission.WORK_TAKE)
        async with self._store.reading() as uow:
            interaction = await visible_interaction(uow, principal, interaction_id)
            legs = await uow.calls.of_interaction(interaction_id)
        if interaction.channel is not Channel.VOICE:
            raise Conflict(f"interaction {interaction_id} is not a phone call")
        if mine and (
            interaction.state is not S.ASSIGNED or interaction.assigned_user_id != principal.user_id
        ):
            raise Conflict(f"interaction {interaction_id} is not assigned to you")
        return interaction, legs

    @staticmethod
    def _live(legs: list[CallLeg], role: LegRole, user_id: int | None = None) -> CallLeg | None:
        for leg in reversed(legs):
            if leg.live and leg.role is role and (user_id is None or leg.user_id == user_id):
                return leg
        return None

    def _address(self, user_id: int, to: str | None) -> str:
        """Where to ring a person: their browser, or a phone number they gave."""
        if to is None or to == "browser":
            return self.conference.browser(user_id)
        return self._phone(to)

    def _phone(self, number: str) -> str:
        try:
            return normalize_phone(number, self._settings.default_region)
        except InvalidIdentity as err:
            raise ValidationError(f"not a phone number: {err.message}", field="to") from err

    async def _caller_id(self, legs: list[CallLeg]) -> str:
        """The number we call out from: the one the customer called, else our first one."""
        customer = next((leg for leg in legs if leg.role is LegRole.CUSTOMER), None)
        if customer is not None:
            async with self._store.reading() as uow:
                event = await uow.timeline.by_provider_ref(PROVIDER, customer.call_sid)
            if event is not None and isinstance(event.data.get("to"), str):
                return str(event.data["to"])
        number = self.conference.own_number()
        if number is None:
            raise ChannelConfigError("no Twilio number to call from: set twilio.numbers")
        return number

    # -- changing the call -----------------------------------------------------------------------

    async def _dial(
        self,
        interaction_id: int,
        *,
        to: str,
        role: LegRole,
        caller_id: str,
        user_id: int | None = None,
        monitor: MonitorMode | None = None,
        coach: str | None = None,
        record: bool = False,
    ) -> CallLeg:
        """Ring someone into the interaction's conference and keep their leg."""
        dialled = await self.conference.dial(
            interaction_id,
            to=to,
            role=role,
            caller_id=caller_id,
            monitor=monitor,
            coach=coach,
            record=record,
        )
        async with self._store.unit_of_work() as uow:
            leg = await uow.calls.add(
                interaction_id=interaction_id,
                call_sid=dialled.call_sid,
                role=role,
                status="queued",
                now=self._clock(),
                user_id=user_id,
                number=to,
                conference_sid=dialled.conference_sid,
                monitor=monitor,
            )
            await uow.commit()
        return leg

    async def _set_hold(self, interaction: Interaction, leg: CallLeg, on: bool, by: int) -> None:
        conference = leg.conference_sid or await self._conference_sid(leg.interaction_id)
        await self.conference.hold(conference, leg.call_sid, on)
        async with self._store.unit_of_work() as uow:
            await uow.calls.update(leg.call_sid, held=on)
            await self._note(
                uow, interaction, "Customer on hold" if on else "Customer off hold", author=by
            )
            await uow.commit()

    async def _conference_sid(self, interaction_id: int) -> str:
        """The sid of the interaction's conference now, looked up if no event has told it yet.

        Participants and conference updates take only the sid (a name is accepted when
        dialling in alone); the join event that brings it can come late or out of order. A
        lookup is kept on the live legs that lack it.
        """
        async with self._store.reading() as uow:
            legs = await uow.calls.of_interaction(interaction_id, live=True)
        known = next((x.conference_sid for x in reversed(legs) if x.conference_sid), None)
        if known is not None:
            return known
        sid = await self.conference.find(interaction_id)
        if sid is None:
            raise Conflict("the call's conference has not started yet; try again in a moment")
        async with self._store.unit_of_work() as uow:
            for leg in legs:
                await uow.calls.update(leg.call_sid, conference_sid=sid)
            await uow.commit()
        return sid

    async def _end_conference(self, interaction_id: int, legs: list[CallLeg]) -> None:
        """Hang up everyone on the call."""
        conference = await self._conference_sid(interaction_id)
        async with self._ending(legs):
            await self.conference.end(conference)

    async def _remove(self, leg: CallLeg) -> None:
        conference = leg.conference_sid or await self._conference_sid(leg.interaction_id)
        async with self._ending([leg]):
            await self.conference.remove(conference, leg.call_sid)

    @contextlib.asynccontextmanager
    async def _ending(self, legs: list[CallLeg]) -> AsyncIterator[None]:
        """Mark legs as being ended by us (ENDING) while the provider ends them; undo if it fails.

        Their status callbacks then know the hang-up was ours, not the caller's or the agent's.
        """
        live = [leg for leg in legs if leg.live]
        await self._set_status(live, ENDING)
        try:
            yield
        except BaseException:
            for leg in live:
                await self._set_status([leg], leg.status)
            raise

    async def _set_status(self, legs: list[CallLeg], status: str) -> None:
        async with self._store.unit_of_work() as uow:
            for leg in legs:
                await uow.calls.update(leg.call_sid, status=status)
            await uow.commit()

    def _routing_on(self) -> RoutingService:
        if self._routing is None:
            raise ChannelNotReady("calls need routing, which is not running in this hub")
        return self._routing

    # -- what agents do ----------------------------------------------------------------------

    async def join(self, principal: Principal, interaction_id: int, to: str | None) -> CallLeg:
        """Ring the agent (browser or phone) into their call; a callback rings the customer too."""
        interaction, legs = await self._call(principal, interaction_id)
        if self._live(legs, LegRole.AGENT, principal.user_id) is not None:
            raise Conflict("you are already on this call")
        caller_id = await self._caller_id(legs)
        leg = await self._dial(
            interaction_id,
            to=self._address(principal.user_id, to),
            role=LegRole.AGENT,
            caller_id=caller_id,
            user_id=principal.user_id,
        )
        customer = self._live(legs, LegRole.CUSTOMER)
        if customer is None:  # a callback: the customer hung up and is owed a call
            number = next((x.number for x in legs if x.role is LegRole.CUSTOMER), None)
            if number is None:
                number = await self._customer_phone(principal, interaction.customer_id)
            await self._dial(interaction_id, to=number, role=LegRole.CUSTOMER, caller_id=caller_id)
        elif customer.held and self._live(legs, LegRole.AGENT) is None:
            await self._set_hold(interaction, customer, False, principal.user_id)
        return leg

    async def hold(self, principal: Principal, interaction_id: int, on: bool) -> None:
        """Put the customer on hold (they hear the hold music), or take them off it."""
        interaction, legs = await self._call(principal, interaction_id)
        customer = self._live(legs, LegRole.CUSTOMER)
        if customer is None:
            raise Conflict("the customer is not on the line")
        await self._set_hold(interaction, customer, on, principal.user_id)

    async def mute(self, principal: Principal, interaction_id: int, on: bool) -> None:
        """Mute or unmute the agent's own leg."""
        _, legs = await self._call(principal, interaction_id)
        leg = self._live(legs, LegRole.AGENT, principal.user_id)
        if leg is None:
            raise Conflict("you are not on this call")
        conference = leg.conference_sid or await self._conference_sid(interaction_id)
        await self.conference.mute(conference, leg.call_sid, on)
        async with self._store.unit_of_work() as uow:
            await uow.calls.update(leg.call_sid, muted=on)
            await uow.commit()

    async def leave(self, principal: Principal, interaction_id: int) -> None:
        """The agent drops off the call; whoever else is on it stays connected.

        After a warm transfer the customer comes off hold; if the call is still the agent's,
        it goes to wrap-up.
        """
        interaction, legs = await self._call(principal, interaction_id, mine=False)
        leg = self._live(legs, LegRole.AGENT, principal.user_id)
        if leg is None:
            raise Conflict("you are not on this call")
        await self._remove(leg)
        customer = self._live(legs, LegRole.CUSTOMER)
        if customer is not None and customer.held:
            await self._set_hold(interaction, customer, False, principal.user_id)
        if interaction.state is S.ASSIGNED and interaction.assigned_user_id == principal.user_id:
            await self._routing_on().wrap_up(interaction_id, author=principal.user_id)

    async def hang_up(self, principal: Principal, interaction_id: int) -> None:
        """End the call for everyone on it; the interaction goes to wrap-up."""
        _, legs = await self._call(principal, interaction_id)
        await self._end_conference(interaction_id, legs)
        await self._routing_on().wrap_up(interaction_id, reason="Hung up", author=principal.user_id)

    async def transfer(
        self,
        principal: Principal,
        interaction_id: int,
        *,
        queue: str | None = None,
        agent_id: int | None = None,
        number: str | None = None,
        warm: bool = False,
    ) -> CallLeg | None:
        """Hand the caller to a queue, a colleague or a number, cold or warm.

        Cold: the agent leaves at once. Warm: the customer waits on hold while the agent stays
        to introduce them, and leaves (``leave``) when ready. To a number, the new leg is
        returned; to a queue or colleague, the ACD finds who joins.
        """
        if sum(x is not None for x in (queue, agent_id, number)) != 1:
            raise ValidationError("transfer to a queue, an agent or a number, one of them")
        interaction, legs = await self._call(principal, interaction_id)
        mine = self._live(legs, LegRole.AGENT, principal.user_id)
        customer = self._live(legs, LegRole.CUSTOMER)
        if customer is None:
            raise Conflict("the customer is not on the line")
        routing = self._routing_on()
        if number is None:
            await routing.transfer(principal, interaction_id, queue=queue, agent_id=agent_id)
            if not customer.held:
                await self._set_hold(interaction, customer, True, principal.user_id)
            if not warm and mine is not None:
                await self._remove(mine)
            return None
        target = self._phone(number)
        if warm:
            await self._set_hold(interaction, customer, True, principal.user_id)
        external = await self._dial(
            interaction_id, to=target, role=LegRole.EXTERNAL, caller_id=await self._caller_id(legs)
        )
        async with self._store.unit_of_work() as uow:
            said = f"{'Consulting' if warm else 'Transferred to'} {target}"
            await self._note(uow, interaction, said, author=principal.user_id)
            await uow.commit()
        if not warm:
            if mine is not None:
                await self._remove(mine)
            await routing.wrap_up(interaction_id, author=principal.user_id)
        return external

    async def place_call(
        self, principal: Principal, customer_id: int, *, number: str | None, to: str | None
    ) -> int:
        """Click-to-call: ring the agent, then the customer, into a new interaction's call."""
        principal.require(Permission.WORK_TAKE)
        if self._routing is None:
            raise ChannelNotReady("calls out need routing, which is not running in this hub")
        target = (
            self._phone(number)
            if number is not None
            else await self._customer_phone(principal, customer_id)
        )
        now = self._clock()
        async with self._store.unit_of_work() as uow:
            customer = await visible_customer(uow, principal, customer_id)
            interaction = await uow.interactions.create(
                customer_id=customer.id,
                channel=Channel.VOICE,
                now=now,
                thread_key=f"call:out:{secrets.token_hex(8)}",
            )
            await uow.timeline.append(
                customer_id=customer.id,
                interaction_id=interaction.id,
                kind=EventKind.CALL,
                direction=Direction.OUTBOUND,
                occurred_at=now,
                channel=Channel.VOICE,
                author_id=principal.user_id,
                body=f"Outgoing call to {target}",
                data={"to": target},
            )
            await uow.commit()
        await self._routing.assign_outbound(principal, interaction.id)
        caller_id = await self._caller_id([])
        record = self._settings.twilio.recording == "announce"
        try:
            await self._dial(
                interaction.id,
                to=self._address(principal.user_id, to),
                role=LegRole.AGENT,
                caller_id=caller_id,
                user_id=principal.user_id,
                record=record,
            )
            await self._dial(interaction.id, to=target, role=LegRole.CUSTOMER, caller_id=caller_id)
        except HubError as err:  # the provider refused or failed: the work ends, and says why
            await self._routing.wrap_up(interaction.id, reason=f"Call not placed: {err.message}")
            raise
        return interaction.id

    async def _customer_phone(self, principal: Principal, customer_id: int) -> str:
        async with self._store.reading() as uow:
            customer = await visible_customer(uow, principal, customer_id)
            identities = await uow.customers.identities_of([customer.id])
        phones = [i.value for i in identities if i.kind is IdentityKind.PHONE]
        if not phones:
            raise ValidationError(f"customer {customer_id} has no phone number", field="to")
        return phones[-1]

    # -- what supervisors do ---------------------------------------------------------------

    async def monitor(
        self, principal: Principal, interaction_id: int, mode: MonitorMode, to: str | None
    ) -> CallLeg:
        """Listen to, whisper to (coach) or barge into an agent's call; again to change mode."""
        principal.require(Permission.CALLS_MONITOR)
        interaction, legs = await self._call(principal, interaction_id, mine=False)
        agent = self._live(legs, LegRole.AGENT)
        if interaction.state is not S.ASSIGNED or agent is None:
            raise Conflict(f"no agent is on interaction {interaction_id}'s call")
        coach = agent.call_sid if mode is MonitorMode.WHISPER else None
        mine = self._live(legs, LegRole.SUPERVISOR, principal.user_id)
        if mine is None:
            mine = await self._dial(
                interaction_id,
                to=self._address(principal.user_id, to),
                role=LegRole.SUPERVISOR,
                caller_id=await self._caller_id(legs),
                user_id=principal.user_id,
                monitor=mode,
                coach=coach,
            )
        else:
            conference = mine.conference_sid or await self._conference_sid(interaction_id)
            await self.conference.monitor(conference, mine.call_sid, mode, coach)
        async with self._store.unit_of_work() as uow:
            mine = await uow.calls.update(mine.call_sid, monitor=mode) or mine
            uow.audit.add(
                at=self._clock(),
                actor_id=principal.user_id,
                action=f"call.{mode.value}",
                entity_type="interaction",
                entity_id=interaction_id,
                agent_id=agent.user_id,
            )
            if mode is MonitorMode.BARGE:  # a party to the call now: the timeline says so
                await self._note(uow, interaction, "A supervisor joined the call")
            await uow.commit()
        return mine

    # -- what the provider tells us ------------------------------------------------------------

    async def caller_waiting(
        self, interaction_id: int, call_sid: str, caller: str | None
    ) -> Interaction | None:
        """An inbound call's interaction is stored: keep the caller's leg; the interaction."""
        async with self._store.unit_of_work() as uow:
            await uow.calls.add(
                interaction_id=interaction_id,
                call_sid=call_sid,
                role=LegRole.CUSTOMER,
                status="in-progress",
                now=self._clock(),
                number=caller,
            )
            interaction = await uow.interactions.get(interaction_id)
            await uow.commit()
        return interaction

    async def still_waiting(self, interaction_id: int) -> bool:
        """Whether the interaction waits for an agent yet (new, queued or offered)."""
        async with self._store.reading() as uow:
            interaction = await uow.interactions.get(interaction_id)
        return interaction is not None and interaction.state in WAITING

    async def agent_dialled_in(
        self, interaction_id: int, agent_id: int, call_sid: str | None, number: str | None
    ) -> bool:
        """An agent's browser calls in to their assigned call: keep the leg; False if not theirs."""
        async with self._store.unit_of_work() as uow:
            interaction = await uow.interactions.get(interaction_id)
            if (
                interaction is None
                or interaction.channel is not Channel.VOICE
                or interaction.state is not S.ASSIGNED
                or interaction.assigned_user_id != agent_id
            ):
                return False
            if call_sid:
                await uow.calls.add(
                    interaction_id=interaction.id,
                    call_sid=call_sid,
                    role=LegRole.AGENT,
                    status="in-progress",
                    now=self._clock(),
                    user_id=agent_id,
                    number=number,
                )
                await uow.commit()
        return True

    async def caller_did(
        self,
        call_sid: str,
        body: str,
        *,
        mark: str,
        attachments: tuple[Attachment, ...] = (),
        data: dict[str, object] | None = None,
        fetch: bool = False,
    ) -> TimelineEvent | None:
        """Put what the caller did on their call's interaction, once per call (``mark``).

        Returns the new event, or None when it was there already (or the call is not ours).
        The answer to it hangs up, so the leg is the hub's to end (ENDING) from here: a
        callback rings the customer anew even if the provider never reports this call's end.
        With ``fetch``, its attachments are ready at the provider: fetching them is owed, in
        the same transaction (whether the event is new or was noted before).
        """
        async with self._store.unit_of_work() as uow:
            leg = await uow.calls.by_sid(call_sid)
            interaction = await uow.interactions.get(leg.interaction_id) if leg else None
            if interaction is None:
                return None
            assert leg is not None
            if leg.live:
                await uow.calls.update(call_sid, status=ENDING)
            ref = f"{call_sid}:{mark}"
            known = await uow.timeline.by_provider_ref(PROVIDER, ref)
            event = None
            if known is None:
                event = await self._note(
                    uow,
                    interaction,
                    body,
                    ref=ref,
                    inbound=True,
                    attachments=attachments,
                    data=dict(data or {}),
                )
            noted = event or known
            if fetch and noted is not None:
                _fetch_owed(uow, noted)
            await uow.commit()
        return event

    async def recording_ready(
        self,
        interaction_id: int,
        recording_sid: str,
        body: str,
        recording: Attachment,
        data: dict[str, object],
    ) -> TimelineEvent | None:
        """A call's recording is ready: it goes on the call's timeline once, to be fetched."""
        async with self._store.unit_of_work() as uow:
            interaction = await uow.interactions.get(interaction_id)
            if interaction is None or await uow.timeline.by_provider_ref(PROVIDER, recording_sid):
                return None
            event = await self._note(
                uow, interaction, body, ref=recording_sid, attachments=(recording,), data=data
            )
            _fetch_owed(uow, event)
            await uow.commit()
        return event

    async def owed_recordings(self, since: datetime) -> list[TimelineEvent]:
        """Voicemails and call recordings since then whose audio is still to be fetched."""
        owed: list[TimelineEvent] = []
        async with self._store.reading() as uow:
            for direction in (Direction.INBOUND, Direction.INTERNAL):  # voicemails, recordings
                recent = await uow.timeline.recent_messages(
                    Channel.VOICE, since=since, limit=1000, direction=direction, kind=EventKind.CALL
                )
                owed += [e for e in recent if any(a.owed for a in e.attachments)]
        return owed

    async def on_status(self, call_sid: str, status: str, duration: int | None) -> None:
        """A leg's status callback: keep it, note it, end the work a customer's hang-up ends."""
        now = self._clock()
        async with self._store.unit_of_work() as uow:
            leg = await uow.calls.by_sid(call_sid)
            if leg is None:
                await self._unrouted_call_ended(uow, call_sid, status, duration)
                return
            interaction = await uow.interactions.get(leg.interaction_id)
            ref = f"{call_sid}:{status}"
            if interaction is None or await uow.timeline.by_provider_ref(PROVIDER, ref):
                return  # the provider retried the callback: already noted
            changes: dict[str, Any] = {"status": status}
            if status == "in-progress":
                changes["answered_at"] = now
            if status in ENDED:
                changes["ended_at"] = now
            await uow.calls.update(call_sid, **changes)
            line = await self._status_line(uow, leg, status, duration)
            if line is not None:
                await self._note(
                    uow,
                    interaction,
                    line,
                    ref=ref,
                    inbound=leg.role is LegRole.CUSTOMER,
                    data={"call_status": status, "duration": duration, "role": leg.role.value},
                )
            kept = False  # looked up only where it decides something: a waiting caller gone
            if leg.role is LegRole.CUSTOMER and status in ENDED and interaction.state in WAITING:
                for mark in KEPT_MARKS:
                    kept = kept or bool(
                        await uow.timeline.by_provider_ref(PROVIDER, f"{leg.call_sid}:{mark}")
                    )
            await uow.commit()
        if status not in ENDED or self._routing is None or leg.status == ENDING:
            return  # still going, or we ended it ourselves (and took care of the rest)
        if leg.role is LegRole.CUSTOMER:
            if interaction.state in WAITING and not kept:
                await self._routing.abandon(interaction.id, "caller hung up")
            elif interaction.state is S.ASSIGNED:
                await self._routing.wrap_up(interaction.id, reason="Caller hung up")
        elif (
            leg.role is LegRole.AGENT
            and interaction.state is S.ASSIGNED
            and interaction.assigned_user_id == leg.user_id
        ):
            await self._agent_dropped(interaction)

    async def _agent_dropped(self, interaction: Interaction) -> None:
        """The agent's own phone or browser hung up: with nobody else to talk to, the call ends."""
        async with self._store.reading() as uow:
            legs = await uow.calls.of_interaction(interaction.id, live=True)
        if any(leg.role in (LegRole.AGENT, LegRole.EXTERNAL) for leg in legs):
            return  # a colleague or a number is still with the customer
        if any(leg.role is LegRole.CUSTOMER for leg in legs):
            await self._end_conference(interaction.id, legs)
        await self._routing_on().wrap_up(interaction.id, reason="Agent hung up")

    async def on_conference(self, interaction_id: int, params: dict[str, str]) -> None:
        """Conference events: learn the conference's sid, and who is held.

        The provider numbers a conference's events (SequenceNumber) and may deliver them out
        of order: an event older than the last one applied to the leg says nothing new.
        """
        event, call_sid = params.get("StatusCallbackEvent"), params.get("CallSid")
        if not call_sid:
            return
        conference, number = params.get("ConferenceSid"), params.get("SequenceNumber", "")
        # Kept as a 32-bit integer: a number beyond it is no sequence Twilio sends.
        sequence = int(number) if number.isdigit() and len(number) <= 9 else None
        changes: dict[str, Any] = {}
        if event in ("participant-hold", "participant-unhold"):
            changes["held"] = event == "participant-hold"
        async with self._store.unit_of_work() as uow:
            leg = await uow.calls.by_sid(call_sid)
            if leg is None or leg.interaction_id != interaction_id:
                return
            if conference and conference != leg.conference_sid:
                changes["conference_sid"] = conference  # a conference it is new to
            elif sequence is not None and (leg.conference_sequence or 0) >= sequence:
                return  # out of date: a later event was applied already
            if sequence is not None:
                changes["conference_sequence"] = sequence
            if changes:
                await uow.calls.update(call_sid, **changes)
                await uow.commit()
        if (
            event == "participant-leave"
            and leg.role is LegRole.CUSTOMER
            and leg.status not in ENDED
        ):
            await self._customer_left(call_sid)

    async def _customer_left(self, call_sid: str) -> None:
        """The customer left the conference: hung up, hung up on, or not (yet)?

        Twilio reports an inbound call's end only to a status callback set on the number,
        which the hub cannot count on; the conference's participant-leave always comes. The
        call itself says whether the caller is gone (then it is the hang-up it would have
        reported) or still on the line (a failed wait request: the Dial's action puts them
        back).
        """
        try:
            status, duration = await self.conference.call_status(call_sid)
        except HubError as err:
            log.warning("could not ask the provider about a caller who left", error=err.message)
            return
        if status in ENDED:
            await self.on_status(call_sid, status, duration)

    async def _status_line(
        self, uow: UnitOfWork, leg: CallLeg, status: str, duration: int | None
    ) -> str | None:
        """What a status callback says on the timeline, or None if nothing worth a line."""
        seconds = f", {duration} s" if duration is not None else ""
        if leg.role is LegRole.CUSTOMER:
            inbound = await uow.timeline.by_provider_ref(PROVIDER, leg.call_sid) is not None
            if status in ENDED:
                if status == "completed" or inbound:
                    return f"Call ended ({status}{seconds})"
                return f"Call not answered ({status})"
            if inbound:
                return None  # the hub itself answered it
            return {"ringing": f"Ringing {leg.number}", "in-progress": "Customer answered"}.get(
                status
            )
        if leg.monitor in (MonitorMode.LISTEN, MonitorMode.WHISPER):
            return None  # silent monitoring is in the audit log, not on the timeline
        who = leg.number or "?"
        if leg.user_id is not None:
            user = await uow.accounts.user(leg.user_id)
            who = user.display_name if user is not None else f"user {leg.user_id}"
        if status == "ringing":
            return f"Ringing {who}"
        if status == "in-progress":
            return f"{who} joined the call"
        if status == "completed":
            return f"{who} left the call ({status}{seconds})"
        if status in ENDED:
            return f"{who} did not answer ({status})"
        return None

    async def _unrouted_call_ended(
        self, uow: UnitOfWork, call_sid: str, status: str, duration: int | None
    ) -> None:
        """A caller who hung up in the IVR menu, before any interaction: note it."""
        event = await uow.timeline.by_provider_ref(PROVIDER, call_sid)
        ref = f"{call_sid}:{status}"
        if (
            event is None
            or status not in ENDED
            or await uow.timeline.by_provider_ref(PROVIDER, ref)
        ):
            return
        seconds = f", {duration} s" if duration is not None else ""
        await uow.timeline.append(
            customer_id=event.customer_id,
            kind=EventKind.CALL,
            direction=Direction.INBOUND,
            occurred_at=self._clock(),
            channel=Channel.VOICE,
            body=f"Call ended in the menu ({status}{seconds})",
            provider=PROVIDER,
            provider_ref=ref,
            data={"call_status": status, "duration": duration},
        )
        await uow.commit()

    async def _note(
        self,
        uow: UnitOfWork,
        interaction: Interaction,
        body: str,
        *,
        author: int | None = None,
        ref: str | None = None,
        inbound: bool = False,
        attachments: tuple[Attachment, ...] = (),
        data: dict[str, Any] | None = None,
    ) -> TimelineEvent:
        """A line about the call on the interaction's timeline (``ref``: the provider's)."""
        return await uow.timeline.append(
            customer_id=interaction.customer_id,
            interaction_id=interaction.id,
            kind=EventKind.CALL,
            direction=Direction.INBOUND if inbound else Direction.INTERNAL,
            occurred_at=self._clock(),
            channel=Channel.VOICE,
            author_id=author,
            body=body,
            attachments=attachments,
            provider=PROVIDER if ref else None,
            provider_ref=ref,
            data=data,
        )


def _fetch_owed(uow: UnitOfWork, event: TimelineEvent) -> None:
    """Owe the fetch of the event's files, with the transaction that keeps their links."""
    uow.record(AttachmentsOwed(event.customer_id, event.interaction_id, event.id, Channel.VOICE))
