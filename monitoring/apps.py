from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"

    def ready(self) -> None:
        from monitoring import collectors
        from monitoring import logging as json_logging

        # Once per process (web, worker, beat, management commands): Celery keeps
        # the JSON logging, and the scrape-time collector (and the worker's metrics
        # exporter) is installed.
        json_logging.connect_celery_logging()
        collectors.install()
