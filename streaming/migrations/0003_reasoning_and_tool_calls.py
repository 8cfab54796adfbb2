"""Reasoning and tool calls in the log; `layout` replaces `delta_ends`.

`layout` lists a stream's frames in order (see `streaming.transcript`); for a row logged before, every frame was a
delta, and a delta is the whole number where its text ends in the answer: exactly what `delta_ends` held. So the
values are copied, then `delta_ends` goes. Backwards, the deltas' ends are copied back and the rest is dropped.
"""

import django.db.models.deletion
from django.db import migrations, models


def layout_from_delta_ends(apps, schema_editor):
    Exchange = apps.get_model("streaming", "Exchange")
    rows = Exchange.objects.exclude(delta_ends=[]).only("id", "delta_ends")
    batch = []
    for row in rows.iterator(chunk_size=500):
        row.layout = row.delta_ends
        batch.append(row)
        if len(batch) == 500:
            Exchange.objects.bulk_update(batch, ["layout"])
            batch = []
    Exchange.objects.bulk_update(batch, ["layout"])


def delta_ends_from_layout(apps, schema_editor):
    Exchange = apps.get_model("streaming", "Exchange")
    batch = []
    for row in Exchange.objects.exclude(layout=[]).only("id", "layout").iterator(chunk_size=500):
        row.delta_ends = [item for item in row.layout if isinstance(item, int)]
        batch.append(row)
    Exchange.objects.bulk_update(batch, ["delta_ends"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [
        ("streaming", "0002_hash_session_keys"),
    ]

    operations = [
        migrations.AddField(
            model_name="exchange",
            name="first_output_ms",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="Reasoning, a tool call or text.",
                null=True,
                verbose_name="time to first output (ms)",
            ),
        ),
        migrations.AddField(
            model_name="exchange",
            name="layout",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="The order of the stream's frames, so an ended stream can be replayed.",
            ),
        ),
        migrations.AddField(
            model_name="exchange",
            name="reasoning",
            field=models.TextField(blank=True, help_text="What the model wrote while thinking, apart from the answer."),
        ),
        migrations.AddField(
            model_name="exchange",
            name="reasoning_field",
            field=models.CharField(
                blank=True,
                help_text="Where the server sent the reasoning; DeepSeek's `reasoning_content` goes back with tool calls.",
                max_length=40,
            ),
        ),
        migrations.CreateModel(
            name="ToolCall",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("position", models.PositiveIntegerField(help_text="Its place among the exchange's calls.")),
                (
                    "round",
                    models.PositiveIntegerField(help_text="Which of the model's responses made the call (from 1)."),
                ),
                ("call_id", models.CharField(max_length=100)),
                ("name", models.CharField(db_index=True, max_length=100)),
                ("arguments", models.TextField(blank=True)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("done", "Done"),
                            ("failed", "Failed"),
                            ("stopped", "stopped (the answer ended first)"),
                        ],
                        db_index=True,
                        max_length=20,
                    ),
                ),
                ("result", models.TextField(blank=True)),
                ("error_code", models.CharField(blank=True, max_length=40)),
                ("error_message", models.TextField(blank=True)),
                ("duration_ms", models.PositiveIntegerField(blank=True, null=True, verbose_name="duration (ms)")),
                ("answer_offset", models.PositiveIntegerField(default=0)),
                ("reasoning_offset", models.PositiveIntegerField(default=0)),
                (
                    "exchange",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="tool_calls", to="streaming.exchange"
                    ),
                ),
            ],
            options={
                "ordering": ["exchange", "position"],
                "constraints": [models.UniqueConstraint(fields=("exchange", "position"), name="one_call_per_position")],
            },
        ),
        migrations.RunPython(layout_from_delta_ends, delta_ends_from_layout),
        migrations.RemoveField(
            model_name="exchange",
            name="delta_ends",
        ),
    ]
