"""The chat page, its JSON API and the health check, for a host's URLconf: `path("chat/", include("streaming.urls"))`.

Names are namespaced (`streaming:chat`, `streaming:conversation-list`, …); the page is given every URL it calls, so
it works under any prefix.
"""

from django.urls import path

from streaming import views

app_name = "streaming"

urlpatterns = [
    path("", views.chat, name="chat"),
    path("api/conversations/", views.conversation_list, name="conversation-list"),
    path("api/conversations/search/", views.conversation_search, name="conversation-search"),
    path("api/conversations/<uuid:conversation_id>/", views.conversation_detail, name="conversation-detail"),
    path("api/exchanges/<uuid:exchange_id>/feedback/", views.exchange_feedback, name="exchange-feedback"),
    path("healthz", views.health, name="health"),
    path("metrics", views.metrics, name="metrics"),
]
