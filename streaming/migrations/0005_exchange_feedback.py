"""Feedback on an answer, kept with its exchange: a thumbs up or down, an optional comment, and when."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("streaming", "0004_conversation_deleted"),
    ]

    operations = [
        migrations.AddField(
            model_name="exchange",
            name="feedback",
            field=models.CharField(
                blank=True,
                choices=[("up", "good (thumbs up)"), ("down", "bad (thumbs down)")],
                db_index=True,
                max_length=10,
            ),
        ),
        migrations.AddField(
            model_name="exchange",
            name="feedback_at",
            field=models.DateTimeField(blank=True, help_text="When the feedback was last given.", null=True),
        ),
        migrations.AddField(
            model_name="exchange",
            name="feedback_comment",
            field=models.TextField(blank=True, max_length=2000),
        ),
    ]
