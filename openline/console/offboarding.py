"""A member leaving the team, across the apps (the console is the one app that may import
them all): deactivation (core), their shift sign-ups (availability), the conversations they
hold (messaging) and their open consoles. Alerts need nothing here: the sweep texts active
members only."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from openline.availability.selectors import member_signups_not_over
from openline.availability.services import UncoveredShift, signups_remove_member
from openline.core.models import Membership, Organization
from openline.core.realtime import publish_signed_out_on_commit
from openline.core.team import MemberNotFound, member_deactivate
from openline.messaging.models import Conversation, ConversationStatus
from openline.messaging.services.assignment import conversations_return_to_queue


@dataclass(frozen=True)
class OffboardingPlan:
    """What deactivating a member will do, for the confirmation page."""

    membership: Membership
    conversations: int  # active conversations they hold, back to the queue
    signups: int  # sign-ups not over yet, removed


@dataclass(frozen=True)
class Offboarding:
    membership: Membership
    conversation_ids: list[int]
    signups_removed: int
    uncovered: list[UncoveredShift]


def member_for_offboarding(*, organization: Organization, membership_id: int) -> Membership:
    membership = (
        Membership.objects.select_related("user")
        .filter(pk=membership_id, organization=organization)
        .first()
    )
    if membership is None:
        raise MemberNotFound("no such member")
    return membership


def offboarding_plan(*, organization: Organization, membership_id: int) -> OffboardingPlan:
    membership = member_for_offboarding(organization=organization, membership_id=membership_id)
    held = Conversation.objects.filter(
        organization=organization,
        assigned_to_id=membership.user_id,
        status=ConversationStatus.ACTIVE,
    )
    signups = member_signups_not_over(
        organization_id=organization.pk, user_id=membership.user_id, since=timezone.now()
    )
    return OffboardingPlan(membership, held.count(), signups.count())


@transaction.atomic
def member_offboard(
    *, organization: Organization, membership_id: int, actor_id: int
) -> Offboarding:
    """Deactivate a member and everything that follows, in one transaction: their sessions
    end (core), every sign-up of theirs not over yet goes (the dates left with nobody are
    returned), the conversations they hold go back to the queue with a note, and their
    open consoles in this organization are closed when it commits. Raises ValidationError
    (the last admin, already deactivated) with nothing changed."""
    membership = member_deactivate(
        organization=organization, membership_id=membership_id, actor_id=actor_id
    )
    user_id, now = membership.user_id, timezone.now()
    removed = member_signups_not_over(
        organization_id=organization.pk, user_id=user_id, since=now
    ).count()
    uncovered = signups_remove_member(
        organization_id=organization.pk, user_id=user_id, since=now, actor_id=actor_id
    )
    returned = conversations_return_to_queue(
        organization_id=organization.pk,
        user_id=user_id,
        note=f"{membership.user} was deactivated; this conversation is back in the queue",
    )
    publish_signed_out_on_commit(organization_ids=[organization.pk], user_id=user_id)
    return Offboarding(membership, returned, removed, uncovered)
