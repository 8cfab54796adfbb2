"""Conversations are deleted softly: `deleted` hides one from its client; the log keeps it."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("streaming", "0003_reasoning_and_tool_calls"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="deleted",
            field=models.DateTimeField(
                blank=True, help_text="When its client deleted it: hidden from them, kept in the log.", null=True
            ),
        ),
    ]
