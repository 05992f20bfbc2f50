from django.apps import AppConfig


class MarketConfig(AppConfig):
    name = "quartermaster.market"
    label = "market"
    verbose_name = "Market: flower types, farmers, market settings, rates by time slot"
