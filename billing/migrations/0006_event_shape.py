from django.db import migrations, models


class Migration(migrations.Migration):
    """Account events take the shape every event log shares (tenants.models.Event): `kind` becomes `action`."""

    dependencies = [
        ("billing", "0005_standing_moves_to_tenants"),
    ]

    operations = [
        migrations.RenameField(model_name="accountevent", old_name="kind", new_name="action"),
        migrations.AlterField(
            model_name="accountevent",
            name="action",
            field=models.CharField(
                choices=[
                    ("hold", "Put on hold"),
                    ("suspend", "Suspended"),
                    ("resume", "Resumed"),
                    ("topup", "Credit added"),
                    ("invoice", "Invoice"),
                    ("credit_note", "Credit note"),
                    ("budget", "Budget alert"),
                    ("details", "Billing details changed"),
                ],
                max_length=32,
            ),
        ),
        migrations.AlterField(model_name="accountevent", name="message", field=models.TextField(blank=True)),
        migrations.AddField(
            model_name="accountevent",
            name="result",
            field=models.CharField(
                choices=[
                    ("requested", "Requested"),
                    ("succeeded", "Succeeded"),
                    ("failed", "Failed"),
                    ("refused", "Refused"),
                ],
                default="succeeded",
                max_length=16,
            ),
        ),
    ]
