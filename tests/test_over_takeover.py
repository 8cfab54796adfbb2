"""The protocol's tests run once more with answers that outlive their worker (`STREAMING_TAKEOVER`): each response
runs in the fake provider's background mode, the handover is kept in Redis beside every frame, and every stop the
server decides also cancels the response upstream. With no worker dying, a client sees exactly what it sees without
the setting.
"""

from __future__ import annotations

import pytest

from tests import test_over_responses

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


@pytest.fixture
def upstream(upstream, settings, redis_url):
    """The fake provider, asked through its Responses stream for background responses, with the handover in Redis."""
    settings.STREAMING_OPENAI_API = "responses"
    settings.STREAMING_TAKEOVER = True
    settings.STREAMING_REDIS_URL = redis_url
    return upstream


# With the take-over on, a worker that drains hands its streams over instead of ending them: test_takeover_workers.py
# checks that.
ENDS_ON_DRAIN = {"test_a_stream_that_outlives_the_grace_is_saved_with_what_was_relayed_and_its_sockets_told"}

for name, value in vars(test_over_responses).items():
    if name.startswith("test_") and name not in ENDS_ON_DRAIN:
        globals()[name] = value
