package engine

import "context"

// ProbeResult is one endpoint's answer to `picbot check vendors`.
type ProbeResult struct {
	Vendor   string
	Endpoint string // the path or operation called
	OK       bool
	// Answer is the vendor's own words when not OK, or what was learnt.
	Answer string
	// Key is the configuration key that decides this call (a path, a
	// field name, a credential), for the operator to change.
	Key string
}

// Prober is a vendor that can check its configuration against the real
// service: the cheapest calls (authentication, catalogues, a query for a
// task that does not exist) and, with spend, one smallest real task per kind.
type Prober interface {
	Probe(ctx context.Context, spend bool) []ProbeResult
}
