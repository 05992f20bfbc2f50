from django.apps import AppConfig


class MediaConfig(AppConfig):
    name = "quartermaster.media"
    label = "media"
    verbose_name = "Media: photos and signatures uploaded straight to storage"
