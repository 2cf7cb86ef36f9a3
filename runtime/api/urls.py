from django.urls import path
from rest_framework.routers import DefaultRouter

from runtime.api.decisions import DecisionViewSet
from runtime.api.policies import PolicyDraftView, PolicyVersionViewSet
from runtime.api.replays import PolicyReplayStartView, PolicyReplayViewSet
from runtime.api.views import TokenEventViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("token-events", TokenEventViewSet, basename="token-event")
router.register("decisions", DecisionViewSet, basename="policy-decision")
router.register("policies", PolicyVersionViewSet, basename="policy-version")
router.register("policy-replays", PolicyReplayViewSet, basename="policy-replay")

urlpatterns = [
    *router.urls,
    # Without a trailing slash, as the API has always promised it (a repository's CI pushes here).
    path("policies/<int:pk>/draft", PolicyDraftView.as_view(), name="policy-version-draft"),
    path("policies/<int:pk>/replays/", PolicyReplayStartView.as_view(), name="policy-version-replays"),
    # The path the API contract first named: the same operation.
    path("policies/<int:pk>/replay/", PolicyReplayStartView.as_view(), name="policy-version-replay"),
]
