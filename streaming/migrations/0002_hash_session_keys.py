"""Name anonymous clients by the SHA-256 of their session key instead of the key itself (see `streaming.clients`).

`Exchange.session_key` grows to hold the 64 hex digits, then every stored `session:<key>` client of a conversation
or an exchange, and every `Exchange.session_key`, is rewritten to the hash, so a visitor whose conversations were
logged before keeps them. A value that already is a hash (64 hex digits; a Django session key is 32 characters of
[a-z0-9]) is left alone, so running this over rows newer code wrote changes nothing.

Redis holds no name to migrate: the one that contains the client, `chat:present:<client>`, lives
`STREAMING_PRESENCE_SECONDS` (15 s by default) and is set again under the new name by the next socket; replay lists
and worker heartbeats are named by stream and worker, and the pub/sub channels of the client groups are not stored.

Irreversible in effect: a hash cannot be turned back into its key. Migrating backwards leaves the hashes in place, so
code from before this migration would no longer find the conversations of anonymous visitors.
"""

import hashlib
import re

from django.db import migrations, models

HASHED = re.compile(r"[0-9a-f]{64}")


def hashed(session_key):
    # The same hash as `streaming.clients.client_of_session`, written out: a migration must not change with the app.
    if HASHED.fullmatch(session_key):
        return session_key
    return hashlib.sha256(session_key.encode()).hexdigest()


def hash_session_keys(apps, schema_editor):
    Conversation = apps.get_model("streaming", "Conversation")
    Exchange = apps.get_model("streaming", "Exchange")
    # One update per session, through the index on `client`, rather than one per row.
    for model in (Conversation, Exchange):
        clients = model.objects.filter(client__startswith="session:").order_by().values_list("client", flat=True)
        for client in set(clients):
            new = "session:" + hashed(client.removeprefix("session:"))
            if new != client:
                model.objects.filter(client=client).update(client=new)
    for session_key in set(Exchange.objects.exclude(session_key="").order_by().values_list("session_key", flat=True)):
        if hashed(session_key) != session_key:
            Exchange.objects.filter(session_key=session_key).update(session_key=hashed(session_key))


class Migration(migrations.Migration):

    dependencies = [
        ("streaming", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="exchange",
            name="session_key",
            field=models.CharField(
                blank=True,
                help_text="The SHA-256 of an anonymous visitor's session key; the key itself is never stored.",
                max_length=64,
                verbose_name="session hash",
            ),
        ),
        migrations.RunPython(hash_session_keys, migrations.RunPython.noop, elidable=True),
    ]
