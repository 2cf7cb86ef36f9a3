from rest_framework.routers import DefaultRouter

from approvals.campaigns.api.views import (
    CampaignDefinitionViewSet,
    CampaignViewSet,
    ReviewItemViewSet,
)

router = DefaultRouter(trailing_slash=True)
router.register("campaign-definitions", CampaignDefinitionViewSet, basename="campaign-definition")
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("review-items", ReviewItemViewSet, basename="review-item")

urlpatterns = router.urls
