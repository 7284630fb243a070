"""Accounts made before e-mail verification existed count as verified: they were invited, seeded, or have used
Hangar already."""

from django.db import migrations
from django.db.models import F


def mark_verified(apps, schema_editor):
    User = apps.get_model("tenants", "User")
    User.objects.filter(email_verified_at__isnull=True).update(email_verified_at=F("date_joined"))


class Migration(migrations.Migration):
    dependencies = [("tenants", "0005_account_security")]

    operations = [migrations.RunPython(mark_verified, migrations.RunPython.noop)]
