from django.contrib import admin
from django.urls import include, path

from streaming import views

urlpatterns = [
    path("", views.chat, name="chat"),
    path("api/conversations/", views.conversation_list, name="conversation-list"),
    path("api/conversations/search/", views.conversation_search, name="conversation-search"),
    path("api/conversations/<uuid:conversation_id>/", views.conversation_detail, name="conversation-detail"),
    path("api/exchanges/<uuid:exchange_id>/feedback/", views.exchange_feedback, name="exchange-feedback"),
    path("healthz", views.health, name="health"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
]
