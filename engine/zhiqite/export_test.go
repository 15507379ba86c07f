package zhiqite

import "time"

// SetNow replaces the adapter's clock, for the month boundary of queryTaskInfo.
func (v *Vendor) SetNow(now func() time.Time) { v.now = now }
