from django.urls import path

from compliance import api

urlpatterns = [
    path("consents/", api.ConsentListCreateView.as_view(), name="consents"),
    path("consents/<str:purpose>/", api.ConsentRevokeView.as_view(), name="consent-revoke"),
    path("my-data/", api.MyDataView.as_view(), name="my-data"),
    path("requests/", api.DataSubjectRequestListCreateView.as_view(), name="data-requests"),
]
