from django.apps import AppConfig


class InspectionsConfig(AppConfig):
    name = "quartermaster.inspections"
    label = "inspections"
    verbose_name = "Inspections: versioned templates, inspections and every version of them"
