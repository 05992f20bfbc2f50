from django.apps import AppConfig


class InspectionsConfig(AppConfig):
    name = "quartermaster.inspections"
    label = "inspections"
    verbose_name = "Inspections: versioned templates, inspections and every version of them"

    def ready(self) -> None:
        # Whoever reads an inspection reads the photos and signatures attached to it.
        from quartermaster.inspections.selectors import names_media_readable_by
        from quartermaster.media import attachments

        attachments.register(names_media_readable_by)
