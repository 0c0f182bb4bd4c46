from __future__ import annotations

from typing import TYPE_CHECKING

from django.apps import AppConfig

if TYPE_CHECKING:
    from openline.providers.base import CallScript, CallUpdate, StatusUpdate
    from openline.providers.models import Number


class MessagingConfig(AppConfig):
    name = "openline.messaging"
    label = "messaging"

    def ready(self) -> None:
        from openline.providers.registry import status_receiver_set, voice_receiver_set

        # The sandbox's in-process carrier reports statuses here (providers sit below
        # messaging and may not import it).
        status_receiver_set(carrier_status_receive)
        voice_receiver_set(CarrierVoice())


def carrier_status_receive(*, number: Number, updates: list[StatusUpdate]) -> int:
    """The status service for an in-process carrier: applies ``updates`` in one transaction
    and returns how many of the reported messages dispatch has stored (0: the carrier came
    before dispatch saved the provider id, and reports again later)."""
    from django.db import transaction

    from openline.messaging.models import Message
    from openline.messaging.services.status import message_status_apply

    ids = {update.provider_message_id for update in updates}
    with transaction.atomic():
        known = Message.objects.filter(
            organization_id=number.organization_id,
            conversation__number=number,
            provider_message_id__in=ids,
        ).count()
        if known:
            message_status_apply(number=number, updates=updates)
    return known


class CarrierVoice:
    """The call service for an in-process carrier (the sandbox's simulated calls)."""

    def answer(
        self, *, number: Number, call_id: int, provider_call_id: str, answered_by: str
    ) -> CallScript | None:
        from openline.messaging.services.calls import call_answer

        return call_answer(
            number=number,
            call_id=call_id,
            provider_call_id=provider_call_id,
            answered_by=answered_by,
        )

    def keypress(self, *, number: Number, call_id: int, provider_call_id: str, digits: str) -> str:
        from openline.messaging.services.calls import call_keypress

        return call_keypress(
            number=number, call_id=call_id, provider_call_id=provider_call_id, digits=digits
        )

    def status(self, *, number: Number, call_id: int, update: CallUpdate) -> bool:
        from openline.messaging.services.calls import call_status_apply

        return call_status_apply(number=number, call_id=call_id, update=update) is not None
