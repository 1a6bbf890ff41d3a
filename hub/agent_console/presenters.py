"""Domain objects as the API's JSON (the domain never serialises itself)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from hub.crm_store.accounts import User
from hub.crm_store.audit import AuditEntry
from hub.crm_store.customers import Merge, Note
from hub.domain.customer import Customer, CustomerRecord, Identity, MergeSuggestion
from hub.domain.interaction import Interaction
from hub.domain.timeline import Attachment, TimelineEvent
from hub.services.customers import SearchHit


def customer_json(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "name": customer.display_name,
        "custom_fields": customer.custom_fields,
        "tags": list(customer.tags),
        "owner_id": customer.owner_id,
        "team_id": customer.team_id,
        "merged_into": customer.merged_into_id,
        "created_at": customer.created_at,
        "updated_at": customer.updated_at,
    }


def identity_json(identity: Identity) -> dict[str, Any]:
    return {
        "id": identity.id,
        "kind": identity.kind.value,
        "value": identity.value,
        "verified": identity.verified,
        "sms_opted_out": identity.opted_out_at is not None,
    }


def interaction_json(interaction: Interaction) -> dict[str, Any]:
    return {
        "id": interaction.id,
        "customer_id": interaction.customer_id,
        "channel": interaction.channel.value,
        "state": interaction.state.value,
        "queue_id": interaction.queue_id,
        "assigned_user_id": interaction.assigned_user_id,
        "subject": interaction.subject,
        "opened_at": interaction.opened_at,
        "updated_at": interaction.updated_at,
        "closed_at": interaction.closed_at,
        "disposition": interaction.disposition,
        "priority": interaction.priority,
        "queued_at": interaction.queued_at,
        "answered_at": interaction.answered_at,
        "abandoned_at": interaction.abandoned_at,
        "csat_score": interaction.csat_score,
        "csat_comment": interaction.csat_comment,
    }


def event_json(event: TimelineEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "customer_id": event.customer_id,
        "interaction_id": event.interaction_id,
        "kind": event.kind.value,
        "channel": None if event.channel is None else event.channel.value,
        "direction": event.direction.value,
        "occurred_at": event.occurred_at,
        "body": event.body,
        "attachments": [attachment_json(event.id, n, a) for n, a in enumerate(event.attachments)],
        "provider": event.provider,
        "provider_ref": event.provider_ref,
        "author_id": event.author_id,
        "data": event.data,
    }


def attachment_json(event_id: int, index: int, attachment: Attachment) -> dict[str, Any]:
    """An attachment as the API shows it: never where the server keeps the file."""
    shown = {k: v for k, v in asdict(attachment).items() if k != "path"}
    shown["kept"] = attachment.path is not None
    shown["download"] = (
        f"/api/v1/events/{event_id}/attachments/{index}" if attachment.path is not None else None
    )
    return shown


def suggestion_json(suggestion: MergeSuggestion) -> dict[str, Any]:
    return {
        "id": suggestion.id,
        "customer_ids": [suggestion.customer_a_id, suggestion.customer_b_id],
        "reason": suggestion.reason,
        "status": suggestion.status,
        "created_at": suggestion.created_at,
    }


def record_json(record: CustomerRecord) -> dict[str, Any]:
    return {
        **customer_json(record.customer),
        "identities": [identity_json(i) for i in record.identities],
        "open_interactions": [interaction_json(i) for i in record.open_interactions],
        "latest_events": [event_json(e) for e in record.latest_events],
        "merge_suggestions": [suggestion_json(s) for s in record.merge_suggestions],
    }


def search_hit_json(hit: SearchHit) -> dict[str, Any]:
    return {
        **customer_json(hit.customer),
        "identities": [
            {"kind": kind.value, "value": value, "verified": verified}
            for kind, value, verified in hit.identities
        ],
    }


def note_json(note: Note) -> dict[str, Any]:
    return {
        "id": note.id,
        "customer_id": note.customer_id,
        "interaction_id": note.interaction_id,
        "author_id": note.author_id,
        "body": note.body,
        "created_at": note.created_at,
    }


def merge_json(merge: Merge) -> dict[str, Any]:
    moved = {k: len(v) for k, v in merge.moved.items() if isinstance(v, list) and k != "added_tags"}
    return {
        "id": merge.id,
        "survivor_id": merge.survivor_id,
        "merged_id": merge.merged_id,
        "moved": moved,
        "performed_by": merge.performed_by,
        "performed_at": merge.performed_at,
        "undone_at": merge.undone_at,
    }


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role.value,
        "team_ids": sorted(user.team_ids),
        "active": user.active,
    }


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at,
        "actor_id": entry.actor_id,
        "action": entry.action,
        "entity_type": entry.entity_type,
        "entity_id": entry.entity_id,
        "details": entry.details,
    }
