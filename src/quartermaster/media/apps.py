from django.apps import AppConfig


class MediaConfig(AppConfig):
    name = "quartermaster.media"
    label = "media"
    verbose_name = "Media: photos and signatures uploaded straight to storage"

    def ready(self) -> None:
        # HEIC photos (iPhones' default) open in Pillow through libheif, which pillow-heif's
        # wheel carries; registered once, before any upload is confirmed.
        from pillow_heif import register_heif_opener

        register_heif_opener()
