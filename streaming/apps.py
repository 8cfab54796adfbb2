from django.apps import AppConfig
from django.core import checks


class StreamingConfig(AppConfig):
    name = "streaming"
    verbose_name = "Chat streaming"

    def ready(self) -> None:
        from streaming import checks as streaming_checks

        for check in (
            streaming_checks.check_api,
            streaming_checks.check_takeover,
            streaming_checks.check_tools,
            streaming_checks.check_hooks,
            streaming_checks.check_shared_state,
            streaming_checks.check_asgi,
        ):
            checks.register(check)
