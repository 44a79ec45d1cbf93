from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"

    def ready(self) -> None:
        from monitoring import collectors, tracing

        # Once per process (web, worker, beat, management commands): the trace id
        # travels into Celery tasks, and the scrape-time collector is registered.
        tracing.connect_celery_signals()
        collectors.install()
