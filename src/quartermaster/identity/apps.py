from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "quartermaster.identity"
    label = "identity"
    verbose_name = "Identity: users, roles, sessions"

    def ready(self) -> None:
        from quartermaster.core import policy
        from quartermaster.identity.permissions import authorize

        policy.install(authorize)
