package engine

import (
	"fmt"
	"time"
)

// FormatDuration says d as people write it in lang: "20h 12m", "5m",
// "45s"; "20小时12分", "5分钟", "45秒". Minutes are rounded; seconds are
// shown only under a minute.
func FormatDuration(d time.Duration, lang Lang) string {
	if d < time.Minute {
		s := max(int((d+time.Second-1)/time.Second), 0)
		if lang == ZH {
			return fmt.Sprintf("%d秒", s)
		}
		return fmt.Sprintf("%ds", s)
	}
	d = d.Round(time.Minute)
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	switch {
	case lang == ZH && h == 0:
		return fmt.Sprintf("%d分钟", m)
	case lang == ZH && m == 0:
		return fmt.Sprintf("%d小时", h)
	case lang == ZH:
		return fmt.Sprintf("%d小时%d分", h, m)
	case h == 0:
		return fmt.Sprintf("%dm", m)
	case m == 0:
		return fmt.Sprintf("%dh", h)
	}
	return fmt.Sprintf("%dh %dm", h, m)
}
