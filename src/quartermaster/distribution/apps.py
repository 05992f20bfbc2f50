from django.apps import AppConfig


class DistributionConfig(AppConfig):
    name = "quartermaster.distribution"
    label = "distribution"
    verbose_name = "Distribution: loads dispatched and received"
