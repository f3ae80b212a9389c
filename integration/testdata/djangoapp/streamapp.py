"""A one-file Django project for sluice's integration tests.

/csv     the StreamingHttpResponse from Django's docs ("Streaming large CSV
         files"), with a pause between rows and the time each row was
         written, so the test can tell streaming from buffering.
/events  server-sent events, same idea.
/page    a plain page.

When a stream's generator is closed early (the client went away and
gunicorn's write failed), it records that in $SLUICE_TEST_GONE_FILE.
"""
import csv
import os
import time

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpResponse, StreamingHttpResponse
from django.urls import path

settings.configure(
    DEBUG=False,
    SECRET_KEY="integration-tests-only",
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["*"],
    MIDDLEWARE=[],
    USE_TZ=True,
)


class Echo:
    """An object that implements just the write method of the file-like
    interface (from the Django docs)."""

    def write(self, value):
        return value


def _gone(name):
    gone = os.environ.get("SLUICE_TEST_GONE_FILE")
    if gone:
        with open(gone, "a") as f:
            f.write(name + "\n")


def csv_view(request):
    n = int(request.GET.get("rows", "5"))
    pause = float(request.GET.get("pause", "0.3"))
    writer = csv.writer(Echo())

    def rows():
        try:
            yield writer.writerow(["row", "written_at"])
            for idx in range(n):
                yield writer.writerow([idx, "%.6f" % time.time()])
                time.sleep(pause)
        except GeneratorExit:
            _gone("csv")
            raise

    return StreamingHttpResponse(
        rows(),
        content_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="rows.csv"'},
    )


def events_view(request):
    n = int(request.GET.get("n", "5"))
    pause = float(request.GET.get("pause", "0.3"))

    def events():
        try:
            for idx in range(n):
                yield "id: %d\ndata: %.6f\n\n" % (idx, time.time())
                time.sleep(pause)
        except GeneratorExit:
            _gone("events")
            raise

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    return response


def page_view(request):
    return HttpResponse(
        "hello from django via %s, host %s"
        % (request.META.get("HTTP_X_FORWARDED_PROTO"), request.get_host())
    )


urlpatterns = [
    path("csv", csv_view),
    path("events", events_view),
    path("page", page_view),
]

application = get_wsgi_application()
