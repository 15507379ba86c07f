package engine_test

import (
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
)

func TestFormatDuration(t *testing.T) {
	for _, tc := range []struct {
		d      time.Duration
		en, zh string
	}{
		{20*time.Hour + 12*time.Minute + 20*time.Second, "20h 12m", "20小时12分"},
		{5*time.Minute + 40*time.Second, "6m", "6分钟"},
		{3 * time.Hour, "3h", "3小时"},
		{44*time.Second + time.Millisecond, "45s", "45秒"},
		{-time.Second, "0s", "0秒"},
	} {
		if got := engine.FormatDuration(tc.d, engine.EN); got != tc.en {
			t.Errorf("%v en: %q, want %q", tc.d, got, tc.en)
		}
		if got := engine.FormatDuration(tc.d, engine.ZH); got != tc.zh {
			t.Errorf("%v zh: %q, want %q", tc.d, got, tc.zh)
		}
	}
}
