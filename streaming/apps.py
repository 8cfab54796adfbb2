from django.apps import AppConfig
from django.core import checks


class StreamingConfig(AppConfig):
    name = "streaming"
    verbose_name = "Chat streaming"

    def ready(self) -> None:
        checks.register(check_tools)


def check_tools(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    """A wrong `STREAMING_TOOLS` entry is an error at start-up (`manage.py check`, `runserver`, `migrate`), not on the
    first socket that would list the tools."""
    from django.core.exceptions import ImproperlyConfigured

    from streaming.tools import registered_tools

    try:
        registered_tools()
    except (ImproperlyConfigured, TypeError) as exc:  # TypeError: a tool `@tool` refused as its module loaded
        return [checks.Error(str(exc), hint="Fix the dotted paths in STREAMING_TOOLS.", id="streaming.E001")]
    return []
