from rest_framework.routers import DefaultRouter

from approvals.api.views import AccessRequestViewSet

router = DefaultRouter(trailing_slash=True)
router.register("access-requests", AccessRequestViewSet, basename="access-request")

urlpatterns = router.urls
