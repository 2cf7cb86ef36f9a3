from rest_framework.routers import DefaultRouter

from runtime.api.views import TokenEventViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("token-events", TokenEventViewSet, basename="token-event")

urlpatterns = router.urls
