package metrics

import "testing"

func TestStatusClass(t *testing.T) {
	for code, want := range map[int]string{200: "2xx", 204: "2xx", 308: "3xx", 404: "4xx", 499: "4xx", 502: "5xx", 101: "1xx", 0: "other", 600: "other"} {
		if got := statusClass(code); got != want {
			t.Errorf("statusClass(%d) = %q, want %q", code, got, want)
		}
	}
}
