from django.db import migrations, models


class Migration(migrations.Migration):
    """Operators change quotas through a service that logs it in the organisation's log."""

    dependencies = [
        ('tenants', '0006_existing_users_verified'),
    ]

    operations = [
        migrations.AlterField(
            model_name='tenantevent',
            name='action',
            field=models.CharField(choices=[('rename', 'Organisation renamed'), ('role_change', 'Role changed'), ('member_remove', 'Member removed'), ('invite', 'Invitation sent'), ('invite_accept', 'Invitation accepted'), ('invite_revoke', 'Invitation withdrawn'), ('token_create', 'API token created'), ('token_revoke', 'API token revoked'), ('token_refused', 'API token refused'), ('two_factor', 'Two-factor requirement changed'), ('hold', 'Put on hold'), ('suspend', 'Suspended'), ('resume', 'Resumed'), ('quota_change', 'Quota changed')], max_length=32),
        ),
    ]
