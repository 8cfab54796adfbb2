"""Versions and per-conversation settings.

Each exchange gains its parent, the exchange whose answer it follows; the conversations logged before this had no
versions, so each exchange's parent is the one created just before it in its conversation. Each conversation gains
the settings its client chose for it.
"""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def link_in_order(apps, schema_editor):
    Exchange = apps.get_model("streaming", "Exchange")
    before = Exchange.objects.filter(conversation=OuterRef("conversation"), created__lt=OuterRef("created"))
    Exchange.objects.update(parent=Subquery(before.order_by("-created").values("id")[:1]))


class Migration(migrations.Migration):
    dependencies = [
        ("streaming", "0005_exchange_feedback"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="settings",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="What its client chose for it (model, system instruction, temperature, max tokens).",
            ),
        ),
        migrations.AddField(
            model_name="exchange",
            name="parent",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="children",
                to="streaming.exchange",
            ),
        ),
        migrations.RunPython(link_in_order, migrations.RunPython.noop),
    ]
