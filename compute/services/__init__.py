"""Every change to instances, SSH keys and what the reconciler finds goes through these functions.

Requests (launch, start, stop, …) lock the instance, check the guard, move it into a transitional state, write
an InstanceEvent and enqueue the worker's task when the transaction commits. Workers report back through the
outcome recorders (`instance_build_succeeded`, `instance_action_failed`, …), which are no-ops when the
instance has already moved on: a duplicate delivery records nothing twice.
"""

from compute.services.hosts import (
    Evacuation,
    host_disable,
    host_drain,
    host_enable,
    host_evacuate,
    region_make_default,
)
from compute.services.instances import (
    instance_action_failed,
    instance_action_succeeded,
    instance_build_failed,
    instance_build_succeeded,
    instance_console_opened,
    instance_delete,
    instance_launch,
    instance_mark_error,
    instance_reboot,
    instance_rename,
    instance_resize,
    instance_retry,
    instance_start,
    instance_stop,
    instance_task_failed,
)
from compute.services.keys import sshkey_create, sshkey_delete
from compute.services.labels import resource_labels_set
from compute.services.migration import instance_migrate, instance_migrate_succeeded
from compute.services.reconciliation import (
    instance_domain_vanished,
    instance_power_synced,
    instance_task_overdue,
    instance_task_requeue,
    orphan_domain_destroy,
    orphan_domains_record,
)

__all__ = [
    "Evacuation",
    "host_disable",
    "host_drain",
    "host_enable",
    "host_evacuate",
    "instance_action_failed",
    "instance_action_succeeded",
    "instance_build_failed",
    "instance_build_succeeded",
    "instance_console_opened",
    "instance_delete",
    "instance_domain_vanished",
    "instance_launch",
    "instance_mark_error",
    "instance_migrate",
    "instance_migrate_succeeded",
    "instance_power_synced",
    "instance_reboot",
    "instance_rename",
    "instance_resize",
    "instance_retry",
    "instance_start",
    "instance_stop",
    "instance_task_failed",
    "instance_task_overdue",
    "instance_task_requeue",
    "orphan_domain_destroy",
    "orphan_domains_record",
    "region_make_default",
    "resource_labels_set",
    "sshkey_create",
    "sshkey_delete",
]
