"""The staff dashboard's indexes (`streaming.dashboard`; measured in docs/performance.md): on PostgreSQL the window's
figures are read by an index-only scan of `created` that carries the columns they need, and the errors by a partial
index of the few exchanges that ended with one. (SQLite, which has no covering indexes, gets plain ones.)"""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("streaming", "0007_budgets"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name="exchange",
            index=models.Index(
                fields=["created"],
                include=(
                    "id",
                    "model",
                    "ttft_ms",
                    "prompt_tokens",
                    "completion_tokens",
                    "counted_tokens",
                    "client",
                    "user",
                ),
                name="streaming_exchange_dashboard",
            ),
        ),
        migrations.AddIndex(
            model_name="exchange",
            index=models.Index(
                condition=models.Q(("error_code", ""), _negated=True),
                fields=["created"],
                include=("error_code",),
                name="streaming_exchange_errors",
            ),
        ),
    ]
