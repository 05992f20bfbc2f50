from django.apps import AppConfig


class MarketConfig(AppConfig):
    name = "quartermaster.market"
    label = "market"
    verbose_name = "Market: flower types, farmers, market settings, rates by time slot"

    def ready(self) -> None:
        # Farmers' WhatsApp messages ("balance") reach the market through notifications.
        from quartermaster.market.notices import answer_inbound
        from quartermaster.notifications import inbound

        inbound.register(answer_inbound)
