"""An alert phone is confirmed by a code texted to it before any alert goes to it: typing
someone else's number makes OpenLine send them one short code and nothing more. The code
is refused when wrong, expired or out of tries; new codes are rate limited; a changed
number needs a new code; an opted-out phone gets none; nobody else can use a code; and the
code is never logged. The same holds for an inbox's after-hours notice phone."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.test import Client

from conftest import Clock
from openline.alerts.models import Alert, AlertPhoneCode, AlertPolicy, AlertProfile
from openline.alerts.services import alert_policy_set
from openline.alerts.sweep import alerts_sweep
from openline.alerts.tests.conftest import OnShift, texted_codes
from openline.contacts.models import ConsentEvent
from openline.messaging.models import (
    Channel,
    Conversation,
    ConversationStatus,
    Message,
    MessageKind,
)

pytestmark = pytest.mark.django_db
PHONE = "+13125550123"
HELP_SEEKER = "+13125550199"
SECRET = "I don't feel safe at home"


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _type_number(client: Client, mobile: str = "312-555-0123", **extra: str) -> Any:
    data = {"mobile": mobile, "permit": "on", "new_conversation_sms": "on", **extra}
    return client.post("/alerts/me", data)


def _texts_to(phone: str) -> list[Message]:
    return list(Message.objects.filter(conversation__contact__phone=phone).order_by("pk"))


def _profile(user: Any) -> AlertProfile:
    return AlertProfile.objects.get(user=user)


def _alerts_on(number: Any, alice: Any) -> None:
    alert_policy_set(
        number=number, actor_id=alice.pk, enabled=True, reminder_minutes=5, reminders=2,
        escalate_after=0,
    )  # fmt: skip


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_typing_a_number_texts_one_code_and_no_alert_goes_to_it_until_confirmed(
    clock: Clock, on_shift: OnShift, text_in: Any, pipeline: Any, org: Any,
    sandbox_number: Any, alice: Any, bob: Any,
) -> None:  # fmt: skip
    from openline.providers.sandbox.models import SandboxMessage

    on_shift(bob, phone=False)
    _alerts_on(sandbox_number, alice)
    me = _client(bob)
    saved = pipeline.run(lambda: _type_number(me))
    assert saved.status_code == 302
    page = me.get("/alerts/me").content.decode()
    assert "We texted a code to +13125550123" in page and "data-confirm-phone" in page
    assert 'data-alerts-banner="missing"' in page and "confirm your number" in page

    # A conversation waits while bob is on shift: the sweep sends him nothing, neither the
    # new-conversation alert nor the reminder (at 5 minutes).
    text_in(sandbox_number, HELP_SEEKER, SECRET)
    for _ in range(3):
        result = pipeline.run(alerts_sweep)
        clock.advance(minutes=3)
    assert (result.waiting, result.sent) == (1, 0)
    assert not Alert.objects.exists()
    [code_text] = _texts_to(PHONE)  # exactly one text, and it is the code
    [code] = texted_codes(PHONE)
    assert code_text.body == (
        f"OpenLine: your code to confirm alerts for {org.name} is {code}. It expires in 10 "
        "minutes. Didn't ask for it? Ignore this text."
    )
    assert SandboxMessage.objects.filter(to=PHONE).count() == 1  # handed to the carrier
    # It is kept like an alert: a closed "Staff alerts" conversation, in nobody's queue.
    kept = code_text.conversation
    assert (code_text.kind, kept.channel, kept.status) == (
        MessageKind.ALERT,
        Channel.ALERT,
        ConversationStatus.CLOSED,
    )
    assert kept.number_id == sandbox_number.pk  # the organization's first number
    # Only a hash of the code is stored.
    stored = AlertPhoneCode.objects.get()
    assert code not in stored.code_hash and len(stored.code_hash) == 64

    # The code comes back: the phone is confirmed, the permission recorded, alerts flow.
    confirmed = me.post("/alerts/me/confirm", {"code": code})
    assert confirmed.status_code == 302
    assert _profile(bob).is_confirmed and _profile(bob).confirmed_at == clock()
    consent = ConsentEvent.objects.get(phone=PHONE)
    assert (consent.kind, consent.actor_id) == ("opt_in", bob.pk)
    assert 'data-alerts-banner="configured"' in me.get("/alerts/me").content.decode()
    assert pipeline.run(alerts_sweep).sent == 1
    alert = Alert.objects.get()
    assert alert.phone == PHONE and alert.message is not None
    assert "is waiting in Main line" in alert.message.body


def test_a_wrong_code_is_refused_clearly_and_spends_a_try(
    clock: Clock, sandbox_number: Any, bob: Any
) -> None:
    me = _client(bob)
    _type_number(me)
    [code] = texted_codes(PHONE)
    wrong = me.post("/alerts/me/confirm", {"code": _wrong(code)})
    assert wrong.status_code == 422
    assert "That code is not right: check the text and type it again (4 tries left)." in (
        wrong.content.decode()
    )
    malformed = me.post("/alerts/me/confirm", {"code": "12ab"})
    assert malformed.status_code == 422
    assert "The code is the 6 digits in the text we sent" in malformed.content.decode()
    assert AlertPhoneCode.objects.get().attempts == 1  # a typo of the format is no try
    assert not _profile(bob).is_confirmed
    # Spaces people copy with and full-width digits some keyboards type are fine.
    typed = code.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert me.post("/alerts/me/confirm", {"code": f"{typed[:3]} {typed[3:]}"}).status_code == 302
    assert _profile(bob).is_confirmed


def test_a_code_expires_after_ten_minutes(clock: Clock, sandbox_number: Any, bob: Any) -> None:
    me = _client(bob)
    _type_number(me)
    [code] = texted_codes(PHONE)
    clock.advance(minutes=10)
    late = me.post("/alerts/me/confirm", {"code": code})
    assert late.status_code == 422 and "That code has expired" in late.content.decode()
    assert 'data-code-state="expired"' in late.content.decode()
    assert not _profile(bob).is_confirmed
    assert me.post("/alerts/me/code").status_code == 302  # a new one
    old, new = texted_codes(PHONE)
    assert me.post("/alerts/me/confirm", {"code": old}).status_code == 422  # replaced
    assert me.post("/alerts/me/confirm", {"code": new}).status_code == 302
    assert _profile(bob).is_confirmed


def test_five_wrong_codes_use_the_code_up(clock: Clock, sandbox_number: Any, bob: Any) -> None:
    me = _client(bob)
    _type_number(me)
    [code] = texted_codes(PHONE)
    answers = [me.post("/alerts/me/confirm", {"code": _wrong(code)}) for _ in range(5)]
    assert [a.status_code for a in answers] == [422] * 5
    assert "(1 try left)" in answers[3].content.decode()
    assert "(ask for a new code)" in answers[4].content.decode()
    right_too_late = me.post("/alerts/me/confirm", {"code": code})
    assert right_too_late.status_code == 422
    assert "Too many wrong codes" in right_too_late.content.decode()
    assert not _profile(bob).is_confirmed
    clock.advance(minutes=1)
    me.post("/alerts/me/code")
    assert me.post("/alerts/me/confirm", {"code": texted_codes(PHONE)[-1]}).status_code == 302


def test_new_codes_are_rate_limited_per_phone_and_per_person(
    clock: Clock, sandbox_number: Any, bob: Any, dora: Any
) -> None:
    me = _client(bob)
    _type_number(me)
    again = me.post("/alerts/me/code")
    assert again.status_code == 429 and "less than a minute ago" in again.content.decode()
    # Another member typing the same number cannot get around it.
    other = _type_number(_client(dora))
    assert other.status_code == 429 and not AlertProfile.objects.filter(user=dora).exists()
    for _ in range(4):
        clock.advance(minutes=1)
        assert me.post("/alerts/me/code").status_code == 302
    clock.advance(minutes=1)
    sixth = me.post("/alerts/me/code")
    assert sixth.status_code == 429
    assert "You have asked for 5 codes in the last hour. Try again in 55 minutes." in (
        sixth.content.decode()
    )
    # Nor by typing other numbers: the limit is per person.
    assert _type_number(me, "312-555-0124").status_code == 429
    assert _profile(bob).mobile == PHONE  # nothing saved half-way
    assert len(_texts_to(PHONE)) == 5 and not _texts_to("+13125550124")
    clock.advance(minutes=55)
    assert me.post("/alerts/me/code").status_code == 302


def test_changing_the_number_needs_a_new_confirmation(
    clock: Clock, on_shift: OnShift, text_in: Any, sandbox_number: Any, alice: Any, bob: Any
) -> None:
    on_shift(bob, phone=False)
    _alerts_on(sandbox_number, alice)
    me = _client(bob)
    _type_number(me)
    me.post("/alerts/me/confirm", {"code": texted_codes(PHONE)[-1]})
    assert _profile(bob).is_confirmed
    _type_number(me, "(312) 555-0124")
    profile = _profile(bob)
    assert (profile.mobile, profile.is_confirmed, profile.confirmed_at) == (
        "+13125550124",
        False,
        None,
    )
    text_in(sandbox_number, HELP_SEEKER, "hello")
    assert alerts_sweep().sent == 0  # neither the old number nor the new one
    old_code, new_code = texted_codes(PHONE)[-1], texted_codes("+13125550124")[-1]
    assert me.post("/alerts/me/confirm", {"code": old_code}).status_code == 422
    assert me.post("/alerts/me/confirm", {"code": new_code}).status_code == 302
    assert alerts_sweep().sent == 1
    assert Alert.objects.get().phone == "+13125550124"
    # Changing back is a change too.
    clock.advance(minutes=1)
    _type_number(me)
    assert not _profile(bob).is_confirmed and len(texted_codes(PHONE)) == 2


def test_an_opted_out_phone_gets_no_code_and_the_member_is_told(
    org: Any, sandbox_number: Any, bob: Any
) -> None:
    from openline.contacts.services.consent import consent_record_opt_out

    consent_record_opt_out(organization_id=org.pk, phone=PHONE, source="keyword", text="STOP")
    refused = _type_number(_client(bob))
    assert refused.status_code == 422
    page = refused.content.decode()
    assert "No code was sent: " in page and "opted out of texts" in page and "START" in page
    assert not _texts_to(PHONE)
    assert not AlertProfile.objects.filter(user=bob).exists()  # nothing stored half-way
    assert not AlertPhoneCode.objects.exists()


def test_nobody_else_can_see_or_use_a_code(
    clock: Clock, sandbox_number: Any, other_number: Any, alice: Any, bob: Any, dora: Any,
    charlie: Any,
) -> None:  # fmt: skip
    _type_number(_client(bob))
    [code] = texted_codes(PHONE)
    for person in (charlie, dora):  # another organization's admin; a colleague
        client = _client(person)
        assert "555-0123" not in client.get("/alerts/me").content.decode()
        assert "5550123" not in client.get("/alerts/me").content.decode()
        taken = client.post("/alerts/me/confirm", {"code": code})
        assert taken.status_code == 422 and "No code is waiting" in taken.content.decode()
    assert AlertPhoneCode.objects.get().attempts == 0
    assert not _profile(bob).is_confirmed
    # An inbox's after-hours phone: only this organization's admins confirm it.
    alert_policy_set(
        number=sandbox_number, actor_id=alice.pk, enabled=False, reminder_minutes=5,
        reminders=0, escalate_after=0, after_hours_phone="312-555-0777",
    )  # fmt: skip
    [after_hours_code] = texted_codes("+13125550777")
    for path in ("/alerts/after-hours/confirm", "/alerts/after-hours/code"):
        assert _client(bob).post(path, {"code": after_hours_code}).status_code == 403
        outsider = _client(charlie).post(
            f"{path}?inbox={sandbox_number.pk}", {"code": after_hours_code}
        )
        assert outsider.status_code in (302, 422)  # their own (empty) inbox, never ours
    assert not AlertPolicy.objects.get(number=sandbox_number).after_hours_confirmed
    assert len(texted_codes("+13125550777")) == 1


def test_the_code_never_appears_in_logs(
    clock: Clock, caplog: pytest.LogCaptureFixture, pipeline: Any, sandbox_number: Any,
    bob: Any,
) -> None:  # fmt: skip
    from openline.core.models import AuditEvent

    caplog.set_level(logging.DEBUG)
    me = _client(bob)
    pipeline.run(lambda: _type_number(me))  # saved, texted and handed to the carrier
    [code] = texted_codes(PHONE)
    me.post("/alerts/me/confirm", {"code": _wrong(code)})
    pipeline.run(lambda: me.post("/alerts/me/confirm", {"code": code}))
    assert _profile(bob).is_confirmed
    assert caplog.records, "nothing was logged: the capture is not working"
    logged = "\n".join(f"{r.getMessage()} {r.args!r} {r.__dict__!r}" for r in caplog.records)
    assert code not in logged
    audit = list(
        AuditEvent.objects.order_by("id").values_list("action", "object_type", "object_id")
    )
    assert ("alerts.phone_code_sent", "alertprofile", str(_profile(bob).pk)) in audit
    assert code not in repr(audit)


def test_the_after_hours_phone_gets_notices_only_once_confirmed(
    clock: Clock, text_in: Any, sandbox_number: Any, alice: Any
) -> None:
    admin = _client(alice)
    policy = {
        "enabled": "", "reminder_minutes": "5", "reminders": "0", "escalate_after": "0",
        "after_hours_phone": "(312) 555-0777",
    }  # fmt: skip
    saved = admin.post(f"/alerts/?inbox={sandbox_number.pk}", policy, follow=True)
    page = saved.content.decode()
    assert "We texted a code to +13125550777" in page and "data-confirm-phone" in page
    text_in(sandbox_number, HELP_SEEKER, SECRET)
    Conversation.objects.filter(contact__phone=HELP_SEEKER).update(opened_offline=True)
    assert alerts_sweep().sent == 0  # not confirmed: no notice
    [code] = texted_codes("+13125550777")
    wrong = admin.post(
        f"/alerts/after-hours/confirm?inbox={sandbox_number.pk}", {"code": _wrong(code)}
    )
    assert wrong.status_code == 422 and "That code is not right" in wrong.content.decode()
    right = admin.post(
        f"/alerts/after-hours/confirm?inbox={sandbox_number.pk}", {"code": code}, follow=True
    )
    assert "After-hours phone confirmed" in right.content.decode()
    assert 'data-after-hours-state="confirmed"' in right.content.decode()
    assert alerts_sweep().sent == 1
    assert Alert.objects.get().phone == "+13125550777"
    # A new after-hours phone starts unconfirmed again.
    policy["after_hours_phone"] = "312-555-0778"
    admin.post(f"/alerts/?inbox={sandbox_number.pk}", policy)
    assert not AlertPolicy.objects.get().after_hours_confirmed
    assert len(texted_codes("+13125550778")) == 1


def test_phones_entered_before_confirmation_existed_must_be_confirmed(
    clock: Clock, on_shift: OnShift, text_in: Any, org: Any, sandbox_number: Any, alice: Any,
    bob: Any,
) -> None:  # fmt: skip
    """What the migration leaves: a phone and its permission, but no confirmation."""
    on_shift(bob)
    AlertProfile.objects.filter(user=bob).update(confirmed_phone="", confirmed_at=None)
    _alerts_on(sandbox_number, alice)
    text_in(sandbox_number, HELP_SEEKER, "hello")
    assert alerts_sweep().sent == 0
    me = _client(bob)
    banner = me.get("/preferences/").content.decode()
    assert 'data-alerts-banner="missing"' in banner and "confirm your number" in banner
    mobile = _profile(bob).mobile
    assert _type_number(me, mobile).status_code == 302  # save it with permission: a code
    assert me.post("/alerts/me/confirm", {"code": texted_codes(mobile)[-1]}).status_code == 302
    assert alerts_sweep().sent == 1


def test_bad_input_to_the_code_pages_gets_a_clear_4xx(
    sandbox_number: Any, alice: Any, bob: Any
) -> None:
    me = Client(raise_request_exception=False)
    me.force_login(bob)
    admin = Client(raise_request_exception=False)
    admin.force_login(alice)
    for data in ({}, {"code": "\x00" * 6}, {"code": "9" * 5000}, {"code": "１２３４５６"}):
        answer = me.post("/alerts/me/confirm", data)
        assert answer.status_code == 422 and "data-code-error" in answer.content.decode()
    assert me.get("/alerts/me/confirm").status_code == 405
    assert me.get("/alerts/me/code").status_code == 405
    nothing = me.post("/alerts/me/code")  # no number saved yet
    assert nothing.status_code == 422 and "Enter your mobile number" in nothing.content.decode()
    for path in ("/alerts/after-hours/confirm", "/alerts/after-hours/code"):
        for inbox in ("abc", "999999", str(sandbox_number.pk)):
            answer = admin.post(f"{path}?inbox={inbox}", {"code": "12"})
            assert answer.status_code == 422, (path, inbox, answer.status_code)
    assert not AlertPhoneCode.objects.exists() and not Message.objects.exists()


def test_nobody_can_read_a_confirmation_code_in_the_console_or_the_api(
    pipeline: Any, org: Any, sandbox_number: Any, alice: Any, bob: Any
) -> None:
    """An admin or supervisor who typed a stranger's number must not find the code in the
    Staff alerts record; a counselor may not either (closed, nobody held it)."""
    from openline.core.services import api_token_create

    pipeline.run(lambda: _type_number(_client(bob)))
    code_text = Message.objects.get(conversation__channel=Channel.ALERT)
    record = code_text.conversation
    _, secret = api_token_create(organization=org)

    for user in (alice, bob):
        client = _client(user)
        for url in (
            f"/conversations/{record.pk}/",
            f"/conversations/{record.pk}/pane",
            f"/conversations/{record.pk}/thread",
            f"/conversations/{record.pk}/export.csv",
            f"/conversations/{record.pk}/print",
            f"/contacts/{record.contact_id}/",
            "/queue?view=closed",
            "/queue?view=all",
        ):
            response = client.get(url)
            assert code_text.body not in response.content.decode(), (user, url)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.get(f"/api/v1/conversations/{record.pk}/messages").status_code == 404
    listing = api.get("/api/v1/conversations").content.decode()
    assert f'"id": {record.pk}' not in listing and f'"id":{record.pk}' not in listing
