"""Three streaming views, the patterns sluice exists for.

Each stamps what it sends with the time it was sent (Unix milliseconds),
so a client (and the integration test) can tell whether it arrived as it
was written or was held back by something in between.
"""
import csv
import json
import time

from django.http import HttpResponse, StreamingHttpResponse


def now_ms():
    return int(time.time() * 1000)


def int_param(request, name, default, lo, hi):
    try:
        v = int(request.GET.get(name, default))
    except ValueError:
        return default
    return min(max(v, lo), hi)


def float_param(request, name, default, lo, hi):
    try:
        v = float(request.GET.get(name, default))
    except ValueError:
        return default
    return min(max(v, lo), hi)


def index(request):
    return HttpResponse(
        "<!doctype html><title>sluice + Django</title>"
        "<h1>Streaming with Django behind sluice</h1><ul>"
        '<li><a href="/exports/rows.csv">CSV export, a million rows</a>'
        '<li><a href="/events/clock">server-sent events</a>'
        '<li><a href="/loader/">a page that loads as work progresses</a></ul>'
    )


class Echo:
    """A file-like object whose write() returns what it is given, so
    csv.writer can format rows without storing them (the Django docs'
    "Streaming large CSV files" recipe)."""

    def write(self, value):
        return value


def export_csv(request):
    """GET /exports/rows.csv?rows=N: N rows (default a million), generated
    as they are sent; neither Django, gunicorn nor sluice holds the file.

    Rows are yielded 1000 at a time: gunicorn writes each yielded item
    with its own send() and chunk header, so one row per item would cost
    a million system calls."""
    rows = int_param(request, "rows", 1_000_000, 1, 10_000_000)
    writer = csv.writer(Echo())

    def generate():
        yield writer.writerow(["id", "name", "amount", "sent_unix_ms"])
        batch = []
        for i in range(rows):
            batch.append(writer.writerow([i, f"customer-{i}", (i * 7919) % 100000 / 100, now_ms()]))
            if len(batch) == 1000:
                yield "".join(batch)
                batch = []
        if batch:
            yield "".join(batch)

    response = StreamingHttpResponse(generate(), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="rows.csv"'
    return response


def sse_clock(request):
    """GET /events/clock?n=N&every=S: a server-sent-events feed, one event
    every S seconds (default 1), N events (default 0 = until the client
    leaves). Between events it sends a comment line every 15 s, so a proxy
    idle timeout (sluice's is 10m on this route) never fires on a live
    feed and a dead client is noticed at the next write."""
    n = int_param(request, "n", 0, 0, 1_000_000)
    every = float_param(request, "every", 1.0, 0.01, 60.0)

    def events():
        yield "retry: 2000\n\n"
        i = 0
        while n == 0 or i < n:
            if i:
                waited = 0.0
                while waited + 15 < every:
                    time.sleep(15)
                    waited += 15
                    yield ": keep-alive\n\n"
                time.sleep(every - waited)
            data = json.dumps({"seq": i, "sent_unix_ms": now_ms()})
            yield f"id: {i}\nevent: tick\ndata: {data}\n\n"
            i += 1

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    # Tells nginx-style proxies (and sluice under streaming: auto) not to
    # buffer; sluice consumes it.
    response["X-Accel-Buffering"] = "no"
    return response


def loader(request):
    """GET /loader/?steps=N&every=S: the "loader" pattern. The page's
    HTML streams in as a slow job progresses, so the user sees each step
    appear instead of a blank tab."""
    steps = int_param(request, "steps", 8, 1, 1000)
    every = float_param(request, "every", 0.5, 0.0, 60.0)

    def page():
        yield (
            "<!doctype html><html><head><meta charset=utf-8><title>Report</title>"
            "<style>body{font-family:sans-serif}li{margin:.2em 0}</style></head>"
            "<body><h1>Building your report…</h1><ol id=steps>\n"
        )
        for i in range(steps):
            time.sleep(every)
            yield f'<li data-step="{i}" data-sent="{now_ms()}">step {i + 1} of {steps} done</li>\n'
        yield f'</ol><p id=done data-sent="{now_ms()}">Report ready.</p></body></html>\n'

    return StreamingHttpResponse(page(), content_type="text/html; charset=utf-8")
