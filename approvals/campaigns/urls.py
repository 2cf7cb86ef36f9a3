from django.urls import path

from approvals.campaigns import views, views_review

app_name = "campaigns"

urlpatterns = [
    path("", views.campaign_list, name="campaign-list"),
    path("review/", views_review.review, name="review"),
    path("review/decide/", views_review.review_decide, name="review-decide"),
    path("definitions/", views.definition_list, name="definition-list"),
    path("definitions/new/", views.definition_edit, name="definition-new"),
    path("definitions/cron.json", views.definition_cron, name="definition-cron"),
    path("definitions/<int:pk>/", views.definition_edit, name="definition-edit"),
    path("definitions/<int:pk>/start/", views.definition_start, name="definition-start"),
    path("definitions/<int:pk>/delete/", views.definition_delete, name="definition-delete"),
    path("<int:pk>/", views.campaign_detail, name="campaign-detail"),
    path("<int:pk>/progress.json", views.campaign_progress, name="campaign-progress"),
    path("<int:pk>/launch/", views.campaign_launch, name="campaign-launch"),
    path("<int:pk>/close/", views.campaign_close, name="campaign-close"),
    path("<int:pk>/cancel/", views.campaign_cancel, name="campaign-cancel"),
    path("<int:pk>/report/", views.campaign_report, name="campaign-report"),
    path("<int:pk>/report.csv", views.campaign_report_csv, name="campaign-report-csv"),
]
