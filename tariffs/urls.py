from django.urls import path

from tariffs.api import TariffListApi

urlpatterns = [
    path("tariffs/", TariffListApi.as_view(), name="tariff-list"),
]
