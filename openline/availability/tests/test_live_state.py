"""The inbox's state pushed live: the scheduler publishes ``inbox.availability`` when a shift
starting or ending changes it (and only then); the workspace shows each inbox's state."""

from __future__ import annotations

import pytest

from openline.availability.services import watch
from openline.availability.tests.support import sign_up, utc

MONDAY_9 = utc(2025, 3, 3, 15)  # 09:00 in Chicago
MONDAY_17 = utc(2025, 3, 3, 23)


def _states(published):
    return [
        (e["organization_id"], e["number_id"], e["online"])
        for e in published
        if e["type"] == "inbox.availability"
    ]


@pytest.fixture
def publish(django_capture_on_commit_callbacks):
    """One scheduler run of the job, its events sent as after a commit."""

    def run() -> int:
        with django_capture_on_commit_callbacks(execute=True):
            return watch.inbox_states_publish_changes()

    return run


@pytest.fixture
def staffed(make_shift, bob, clock):
    shift = make_shift()
    sign_up(shift, bob, MONDAY_9)
    return shift


def test_scheduler_publishes_when_a_shift_starts_and_ends_and_only_then(
    staffed, sandbox_number, org, clock, published, publish
):
    clock.set(utc(2025, 3, 3, 14, 59))
    publish()  # a fresh process tells consoles what it sees
    assert _states(published) == [(org.pk, sandbox_number.pk, False)]
    publish()
    assert len(_states(published)) == 1  # nothing changed: nothing sent
    clock.set(MONDAY_9)
    assert publish() == 1
    clock.set(utc(2025, 3, 3, 20))
    assert publish() == 0
    clock.set(MONDAY_17)
    publish()
    assert _states(published) == [
        (org.pk, sandbox_number.pk, False),
        (org.pk, sandbox_number.pk, True),
        (org.pk, sandbox_number.pk, False),
    ]


def test_each_organization_hears_only_about_its_own_inboxes(
    staffed, sandbox_number, other_number, org, other_org, clock, published, publish
):
    clock.set(MONDAY_9)
    publish()
    assert sorted(_states(published)) == sorted(
        [(org.pk, sandbox_number.pk, True), (other_org.pk, other_number.pk, False)]
    )


def test_the_scheduler_runs_it(
    staffed, sandbox_number, clock, published, django_capture_on_commit_callbacks, monkeypatch
):
    from openline.runtime import scheduler
    from openline.runtime.scheduler import run_periodic

    monkeypatch.setattr(scheduler, "close_old_connections", lambda: None)  # the test's own
    clock.set(MONDAY_9)
    with django_capture_on_commit_callbacks(execute=True):
        run_periodic()
    assert (sandbox_number.organization_id, sandbox_number.pk, True) in _states(published)


def test_workspace_shows_each_inbox_state(staffed, sandbox_number, org, bob, bob_client, clock):
    from openline.providers.services import number_add

    number_add(organization=org, provider="sandbox", e164="+12025550111", name="Youth")
    clock.set(MONDAY_9)
    bob_client.force_login(bob)  # hours later: an idle sign-in has ended
    html = " ".join(bob_client.get("/").content.decode().split())
    assert f'data-inbox-badge="{sandbox_number.pk}" data-online="1"' in html
    assert 'Main line: <span class="inbox-state-word">online</span>' in html
    assert 'Youth: <span class="inbox-state-word">offline</span>' in html
    assert "Offline messages" not in html  # the report is for supervisors and admins
