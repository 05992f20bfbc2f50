from django.apps import AppConfig


class DayEndConfig(AppConfig):
    name = "quartermaster.dayend"
    label = "dayend"
    verbose_name = "Day-end: a truck's stock and money reconciled and the day closed"

    def ready(self) -> None:
        from quartermaster.dayend.selectors import closed_day_for
        from quartermaster.sync import review

        review.register(closed_day_for)
