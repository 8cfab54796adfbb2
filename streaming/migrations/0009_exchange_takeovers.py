"""How many times another worker went on with an exchange's answer (`STREAMING_TAKEOVER`), so that the log tells a
taken-over answer from one its first worker finished."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("streaming", "0008_dashboard_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="exchange",
            name="takeovers",
            field=models.PositiveSmallIntegerField(
                default=0,
                help_text="How many times another worker went on with the answer after the one generating it died "
                "or restarted (STREAMING_TAKEOVER).",
            ),
        ),
        migrations.AlterField(
            model_name="exchange",
            name="worker",
            field=models.CharField(
                blank=True,
                db_index=True,
                help_text="The process that generated it (the last, if taken over).",
                max_length=100,
            ),
        ),
    ]
