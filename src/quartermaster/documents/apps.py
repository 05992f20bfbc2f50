from django.apps import AppConfig


class DocumentsConfig(AppConfig):
    name = "quartermaster.documents"
    label = "documents"
    verbose_name = "Documents: PDFs in English and Tamil"
