from django.urls import path

from . import views

urlpatterns = [
    path("", views.index),
    path("exports/rows.csv", views.export_csv),
    path("events/clock", views.sse_clock),
    path("loader/", views.loader),
]
