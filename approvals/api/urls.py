from rest_framework.routers import DefaultRouter

from approvals.api.views import AccessRequestViewSet, GrantViewSet

router = DefaultRouter(trailing_slash=True)
router.register("access-requests", AccessRequestViewSet, basename="access-request")
router.register("grants", GrantViewSet, basename="grant")

urlpatterns = router.urls
