"""The Django app: records auth events (see ``signals``)."""

from __future__ import annotations

from django.apps import AppConfig


class AuditsqlConfig(AppConfig):
    name = "auditsql.integrations.django"
    label = "auditsql"
    verbose_name = "auditsql"

    def ready(self) -> None:
        from auditsql.integrations.django.signals import connect
        connect()
