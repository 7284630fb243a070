from django.db import migrations, models


class Migration(migrations.Migration):
    """Instance events take the shape every event log shares (tenants.models.Event): `user` becomes `actor`."""

    dependencies = [
        ("compute", "0001_initial"),
    ]

    operations = [
        migrations.RenameField(model_name="instanceevent", old_name="user", new_name="actor"),
        migrations.AlterField(
            model_name="instanceevent",
            name="action",
            field=models.CharField(
                choices=[
                    ("launch", "Launch"),
                    ("build", "Build"),
                    ("start", "Start"),
                    ("stop", "Stop"),
                    ("force_stop", "Force stop"),
                    ("reboot", "Reboot"),
                    ("resize", "Resize"),
                    ("delete", "Delete"),
                    ("rename", "Rename"),
                    ("mark_error", "Mark as error"),
                    ("reconcile", "Reconcile"),
                ],
                max_length=32,
            ),
        ),
        migrations.AlterField(
            model_name="instanceevent",
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
