//go:build !linux

package main

import "time"

func selfCPU() time.Duration { return 0 }

func pidsCPU([]int) (map[int]time.Duration, bool) { return nil, false }
