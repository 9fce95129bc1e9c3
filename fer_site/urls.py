"""The site's addresses: the page, health, admin, and each app's REST API under /api/v1/."""

from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from fer_site import views
from fer_site.api.views import api_not_found

api_v1 = [
    path("", include("emotions.urls")),
    path("", include("adaptation.urls")),
    path("", include("training.urls")),
    # [\s\S], not ".": an address with a newline in it (%0A) is an unknown address too.
    re_path(r"^(?P<rest>[\s\S]*)$", api_not_found),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]

if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
