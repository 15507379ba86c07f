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
// task that does not exist). The billed tasks are a Spender's.
type Prober interface {
	Probe(ctx context.Context) []ProbeResult
}

// SpendCase is one smallest billed task of one kind a vendor offers, for
// `picbot check vendors --spend`: the request with the least work the
// vendor allows. Its input images (Request.AllInputs) are placeholders: the
// command serves a small picture of its own at each one's link.
type SpendCase struct {
	Endpoint string // the path or operation the task is created at
	Key      string // the configuration keys that decide it
	Request  Request
}

// Spender is a vendor that lists its smallest task of every kind it offers.
type Spender interface {
	SpendCases() []SpendCase
}
