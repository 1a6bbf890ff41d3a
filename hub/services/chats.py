"""Web chat use cases on the visitor's side: their chat, their history, receipts, ratings, files.

The web chat channel (``hub.channels.webchat``) verifies the visitor (a signed id), checks
limits and speaks socket.io; what it reads or keeps in the store is asked of ``Chats``. A
visitor only ever reaches what is theirs: an event is theirs when it came from or went to
their visitor id.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from hub.crm_store.unit_of_work import Store, UnitOfWork
from hub.domain.identity import IdentityKind, IdentityRef
from hub.domain.interaction import OPEN_STATES, Channel, Interaction, InteractionState
from hub.domain.timeline import Attachment, Direction, EventKind, TimelineEvent
from hub.errors import NotFound, ValidationError

# A reply's status at the visitor only moves on (a late "delivered" never undoes "read").
RECEIPTS = ("sending", "sent", "delivered", "read")
Authored = tuple[TimelineEvent, str | None]  # an event and its author's display name


class Chats:
    """What the web chat reads and keeps for visitors."""

    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._clock = clock

    async def agent_name(self, user_id: int | None) -> str | None:
        """The display name a visitor sees for an agent."""
        if user_id is None:
            return None
        async with self._store.reading() as uow:
            return await _name(uow, user_id)

    async def reply(self, event_id: int | None, author_id: int | None) -> Authored:
        """An agent's reply to push to the visitor, with its author's name."""
        async with self._store.reading() as uow:
            event = None if event_id is None else await uow.timeline.event(event_id)
            author = None if author_id is None else await _name(uow, author_id)
        if event is None:
            raise NotFound("the reply's timeline event is gone")
        return event, author

    async def chat_of(self, interaction_id: int) -> tuple[Interaction, str] | None:
        """A web chat and the visitor it is with."""
        async with self._store.reading() as uow:
            interaction = await uow.interactions.get(interaction_id)
            latest = await uow.timeline.latest_inbound(interaction_id)
        if interaction is None or interaction.channel is not Channel.WEBCHAT or latest is None:
            return None
        visitor = latest.data.get("from")
        return (interaction, visitor) if isinstance(visitor, str) else None

    async def open_chat(self, visitor: str) -> Interaction | None:
        """The visitor's chat still going on, if any."""
        ref = IdentityRef(IdentityKind.CHAT_VISITOR, visitor)
        async with self._store.reading() as uow:
            customer_id = await uow.customers.verified_owner(ref)
            if customer_id is None:
                return None
            return await uow.interactions.open_for(customer_id, Channel.WEBCHAT, None)

    async def message(self, event_id: int) -> tuple[TimelineEvent | None, Interaction | None]:
        """A message the visitor just sent, and the chat it is in."""
        async with self._store.reading() as uow:
            event = await uow.timeline.event(event_id)
            chat = None if event is None else await uow.interactions.get(event.interaction_id or -1)
        return event, chat

    async def file(self, visitor: str, event_id: int, index: int) -> Attachment | None:
        """A kept file of the visitor's conversation (theirs or the agent's), or None."""
        async with self._store.reading() as uow:
            event = await uow.timeline.event(event_id)
        if (
            event is None
            or visitor not in (event.data.get("from"), event.data.get("to"))
            or not 0 <= index < len(event.attachments)
            or not event.attachments[index].path
        ):
            return None
        return event.attachments[index]

    async def mark_seen(self, visitor: str, event_id: int, *, read: bool) -> bool:
        """The visitor's widget has a reply (read: shown to them); False if it is not theirs."""
        async with self._store.unit_of_work() as uow:
            event = await uow.timeline.event(event_id)
            if (
                event is None
                or event.channel is not Channel.WEBCHAT
                or event.direction is not Direction.OUTBOUND
                or event.data.get("to") != visitor
            ):
                return False
            wanted = "read" if read else "delivered"
            status = event.data.get("status")
            current = RECEIPTS.index(status) if status in RECEIPTS else -1
            if RECEIPTS.index(wanted) <= current or status == "failed":
                return True
            await uow.timeline.update_delivery(
                event_id, status=wanted, **{f"{wanted}_at": self._clock().isoformat()}
            )
            await uow.commit()
        return True

    async def rate(self, visitor: str, interaction_id: int, score: int, comment: str) -> None:
        """The visitor's rating at the end of their chat, kept on the interaction once."""
        found = await self.chat_of(interaction_id)
        if found is None or found[1] != visitor:
            raise NotFound(f"no chat {interaction_id} of yours")
        interaction = found[0]
        if interaction.state in OPEN_STATES - {InteractionState.WRAP_UP}:
            raise ValidationError("a chat is rated when it has ended")
        now = self._clock()
        async with self._store.unit_of_work() as uow:
            if not await uow.interactions.set_rating(interaction_id, score, comment or None, now):
                raise ValidationError("this chat is rated already")
            await uow.timeline.append(
                customer_id=interaction.customer_id,
                interaction_id=interaction_id,
                kind=EventKind.NOTE,
                direction=Direction.INTERNAL,
                occurred_at=now,
                channel=Channel.WEBCHAT,
                body=f"The customer rated the chat {score}/5" + (f": {comment}" if comment else ""),
                data={"csat": score},
            )
            await uow.commit()

    async def history(self, visitor: str, limit: int) -> tuple[list[Authored], Interaction | None]:
        """The visitor's last chat messages (newest first), and their open chat, if any."""
        ref = IdentityRef(IdentityKind.CHAT_VISITOR, visitor)
        async with self._store.reading() as uow:
            customer_id = await uow.customers.verified_owner(ref)
            if customer_id is None:
                return [], None
            events = await uow.timeline.page(customer_id, limit=4 * limit)
            current = await uow.interactions.open_for(customer_id, Channel.WEBCHAT, None)
            chat = [
                e
                for e in events
                if e.channel is Channel.WEBCHAT
                and e.kind is EventKind.MESSAGE
                and visitor in (e.data.get("from"), e.data.get("to"))
            ][:limit]
            names = {
                author: await _name(uow, author)
                for author in {e.author_id for e in chat if e.author_id is not None}
            }
        return [(e, names.get(e.author_id or -1)) for e in chat], current

    async def note_transcript(self, last_event_id: int, chat_id: int | None, address: str) -> None:
        """Note on the visitor's timeline that their transcript was emailed to ``address``."""
        async with self._store.unit_of_work() as uow:
            event = await uow.timeline.event(last_event_id)
            if event is None:
                return
            await uow.timeline.append(
                customer_id=event.customer_id,
                interaction_id=chat_id if chat_id is not None else event.interaction_id,
                kind=EventKind.NOTE,
                direction=Direction.INTERNAL,
                occurred_at=self._clock(),
                channel=Channel.WEBCHAT,
                body=f"Chat transcript emailed to {address} at the visitor's request",
            )
            await uow.commit()


async def _name(uow: UnitOfWork, user_id: int) -> str | None:
    user = await uow.accounts.user(user_id)
    return None if user is None else str(user.display_name)
