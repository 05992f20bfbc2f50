from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "quartermaster.notifications"
    label = "notifications"
    verbose_name = "Notifications: messages to people through the outbox, delivery status"

    def ready(self) -> None:
        from quartermaster.core import outbox
        from quartermaster.notifications.delivery import KIND, NotificationDeliverer

        outbox.register(KIND, NotificationDeliverer())
