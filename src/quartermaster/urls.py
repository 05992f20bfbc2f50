from django.contrib import admin
from django.urls import path

from quartermaster.api import api, health, root_api

handler404 = "quartermaster.core.http.not_found_view"
handler500 = "quartermaster.core.http.server_error_view"

urlpatterns = [
    path("health", health, name="health"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("", root_api.urls),
]
