from django.urls import path

from . import osv_views

urlpatterns = [
    path("v1/query", osv_views.query, name="osv-query"),
    path("v1/querybatch", osv_views.querybatch, name="osv-querybatch"),
    path("v1/vulns/<str:osv_id>", osv_views.vuln, name="osv-vuln"),
]
