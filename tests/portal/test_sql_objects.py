"""sql.insert_objects writes new objects as save() would, in one statement on PostgreSQL; sql.constraint_violated names
the constraint an insert broke."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models.signals import post_save
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from compute.models import INSTANCE_NAME_CONSTRAINT, Instance, InstanceEvent
from portal import sql
from tenants.models import ActivityEntry
from tests.factories.compute import InstanceFactory

pytestmark = pytest.mark.django_db


def _event(instance, message: str) -> InstanceEvent:
    return InstanceEvent(
        tenant_id=instance.tenant_id, instance=instance, action="launch", result="requested", message=message
    )


def test_objects_of_several_models_are_written_with_their_keys_and_signals(tenant):
    instance = InstanceFactory(tenant=tenant)
    first, second, last = _event(instance, "first"), _event(instance, "second"), _event(instance, "last")
    entry = ActivityEntry(
        tenant_id=tenant.pk, created_at=timezone.now(), resource_type="instance", action="launch", message="entry"
    )
    saved = []

    def receiver(sender, instance, created, **_):
        saved.append((sender, instance.pk, created, instance._state.adding))

    post_save.connect(receiver, dispatch_uid="test.insert_objects")
    try:
        with CaptureQueriesContext(connection) as captured:
            sql.insert_objects([first, second, entry, last])
    finally:
        post_save.disconnect(dispatch_uid="test.insert_objects")

    # Three runs (events, the entry, an event): one statement on PostgreSQL, one per run elsewhere.
    assert len(captured.captured_queries) == (1 if connection.vendor == "postgresql" else 3)
    for event in (first, second, last):
        assert InstanceEvent.objects.get(pk=event.pk).message == event.message
    assert ActivityEntry.objects.get(pk=entry.pk).message == "entry"
    assert saved == [
        (InstanceEvent, first.pk, True, False),
        (InstanceEvent, second.pk, True, False),
        (ActivityEntry, entry.pk, True, False),
        (InstanceEvent, last.pk, True, False),
    ]
    assert all(obj._state.db == "default" for obj in (first, second, entry, last))


def _new_copy(instance: Instance, name: str) -> Instance:
    copy = Instance.objects.get(pk=instance.pk)
    copy.id, copy.name, copy.updated_at = Instance._meta.pk.default(), name, None
    copy._state.adding = True
    return copy


def test_a_field_set_when_saved_is_set_here_too(tenant):
    written = _new_copy(InstanceFactory(tenant=tenant, name="web-1"), "web-2")
    sql.insert_objects([written])
    assert written.updated_at is not None  # auto_now
    assert Instance.objects.get(pk=written.pk).updated_at == written.updated_at


def test_the_constraint_an_insert_broke_is_named(tenant):
    taken = InstanceFactory(tenant=tenant, name="web-1")
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        sql.insert_objects([_new_copy(taken, "WEB-1")])
    assert sql.constraint_violated(caught.value) == INSTANCE_NAME_CONSTRAINT
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        sql.insert_objects([_event(taken, "again"), _new_copy(taken, "Web-1")])
    assert sql.constraint_violated(caught.value) == INSTANCE_NAME_CONSTRAINT
    assert not InstanceEvent.objects.filter(message="again").exists()
