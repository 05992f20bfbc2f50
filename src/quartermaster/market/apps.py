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
        # A party user may sign in as a farmer: the users API links one through UpdateFarmer.
        from quartermaster.identity import parties
        from quartermaster.market.selectors import farmers_of_users
        from quartermaster.market.services import UpdateFarmer

        parties.register(
            parties.PartyKind(
                name="farmer",
                link=lambda farmer, user: UpdateFarmer(id=farmer, user=user),
                linked=farmers_of_users,
            )
        )
