// Package e2e holds gantrain's process-level and real-component tests: they build
// the gantrain binary, run it as a separate process and check it from outside, with
// signals (SIGTERM, a second signal, kill -9 during checkpoint writes), a real
// Prometheus server scraping it, promtool, and headless Chromium loading the live
// page. It has no non-test code.
//
// The tests that need a tool (prometheus, promtool, chromium) skip when it is not
// installed, unless GANTRAIN_E2E=1 is set (as CI does), which turns a missing tool
// into a failure. -short cuts the kill -9 rounds to a few.
package e2e
