from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from openline.api.api import api
from openline.chat import views as chat_views
from openline.runtime.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(template_name="console/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("openline.console.account_urls")),
    path("security/", include("openline.console.security_urls")),
    path("", include("openline.console.audit_urls")),
    path("api/v1/", api.urls),
    path("api/docs", RedirectView.as_view(url="/api/v1/docs", permanent=False)),
    path("sandbox/", include("openline.runtime.urls")),  # the phone simulator
    path("voice/", include("openline.messaging.urls")),  # providers' voice callbacks
    path("widget.js", chat_views.widget_js, name="chat_widget_js"),
    path("widget-demo/<str:public_id>", chat_views.widget_demo, name="chat_widget_demo"),
    path("chat/<str:public_id>/config", chat_views.widget_config, name="chat_config"),
    path("chat/<str:public_id>/start", chat_views.chat_start, name="chat_start"),
    path("chat/<str:public_id>/survey", chat_views.chat_survey, name="chat_survey"),
    path("shifts/", include("openline.availability.urls")),
    path("alerts/", include("openline.alerts.urls")),
    path("credits/", include("openline.billing.urls")),
    path("broadcasts/", include("openline.campaigns.urls")),
    path("appointments/", include("openline.campaigns.appointment_urls")),
    path("campaigns/", include("openline.campaigns.campaign_urls")),
    path("forms/", include("openline.forms.urls")),
    path("reports/", include("openline.reports.urls")),
    path("", include("openline.console.urls")),
]
