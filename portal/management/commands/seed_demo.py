"""Loads demo data: an operator, a demo organisation with its owner, the catalog and simulated hosts, and a lived-in
account: machines in several states, addresses, a private network, three months of invoices, a budget.

Safe to run any number of times: existing rows are kept, missing ones are added.
"""

# write-ok-file: the demo log-ins, written once by `manage.py seed_demo`

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from tenants.models import Membership, Tenant
from tenants.roles import Role
from tenants.services import tenant_create

OPERATOR_EMAIL = "operator@hangar.local"
DEMO_EMAIL = "demo@hangar.local"
DEMO_TENANT = "Demo Company"


class Command(BaseCommand):
    help = "Create (or complete) the demo data and print the log-ins."

    def handle(self, *args, **options):
        operator_password = os.environ.get("HANGAR_OPERATOR_PASSWORD", "operator-hangar-1")
        demo_password = os.environ.get("HANGAR_DEMO_PASSWORD", "demo-hangar-1")
        User = get_user_model()
        with transaction.atomic():
            operator = User.objects.filter(email=OPERATOR_EMAIL).first()
            if operator is None:
                User.objects.create_superuser(email=OPERATOR_EMAIL, password=operator_password, full_name="Operator")
            demo = User.objects.filter(email=DEMO_EMAIL).first()
            if demo is None:
                demo = User.objects.create_user(
                    email=DEMO_EMAIL, password=demo_password, full_name="Dana Demo", email_verified_at=timezone.now()
                )
            tenant = Tenant.objects.filter(name=DEMO_TENANT, memberships__user=demo).first()
            if tenant is None:
                tenant = tenant_create(name=DEMO_TENANT, owner=demo)
            Membership.objects.get_or_create(user=demo, tenant=tenant, defaults={"role": Role.OWNER})
            for seed in self.seeders():
                seed(tenant=tenant, stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS("Demo data is in place."))
        self.stdout.write(f"  Tenant dashboard: log in as {DEMO_EMAIL} / {demo_password}")
        self.stdout.write(f"  Operator admin:   log in as {OPERATOR_EMAIL} / {operator_password} (then /admin/)")

    def seeders(self):
        """Each app's demo seeding, in dependency order: the catalog and prices, then the demo organisation's
        machines, then the billing history (their segments backdated, the past months' invoices issued), then the
        storage added this month, then a budget near its limit that counts all of it."""
        from billing import demo as billing_demo
        from compute import demo as compute_demo
        from compute.network import demo as network_demo
        from compute.storage import demo as storage_demo

        return [
            compute_demo.seed,
            network_demo.seed,
            billing_demo.seed,
            compute_demo.seed_machines,
            billing_demo.seed_history,
            storage_demo.seed,
            billing_demo.seed_budget,
        ]
