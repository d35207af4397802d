from __future__ import annotations

from django.urls import path

from tests.integrations.djangoapp import views

urlpatterns = [
    path("notes/", views.notes),
    path("login/", views.login_view),
    path("logout/", views.logout_view),
    path("password/", views.password_view),
]
