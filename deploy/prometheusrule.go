package deploy

import (
	"bytes"
	"fmt"
	"strings"
)

// RulesFile is the Prometheus rules file that docker/compose.yaml loads, and
// PrometheusRuleFile the PrometheusRule generated from it, relative to this module.
const (
	RulesFile          = "../docker/prometheus/gantrain.rules.yml"
	PrometheusRuleFile = "kubernetes/monitoring/prometheusrule.yaml"
)

// PrometheusRule wraps a Prometheus rules file in a PrometheusRule object of the
// Prometheus Operator: the file's groups become its spec, line for line, comments
// included, so that the two cannot drift apart.
func PrometheusRule(rules []byte) ([]byte, error) {
	if !bytes.Contains(rules, []byte("\ngroups:")) && !bytes.HasPrefix(rules, []byte("groups:")) {
		return nil, fmt.Errorf("rules file: no top-level groups")
	}
	var b strings.Builder
	b.WriteString(`# Generated from docker/prometheus/gantrain.rules.yml by "cd deploy && go generate ./...";
# do not edit. The Prometheus Operator's form of the same rules.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: gantrain
  labels:
    app.kubernetes.io/name: gantrain
spec:
`)
	for _, line := range strings.SplitAfter(strings.TrimRight(string(rules), "\n")+"\n", "\n") {
		if strings.TrimSpace(line) == "" {
			b.WriteString(line)
			continue
		}
		b.WriteString("  " + line)
	}
	return []byte(b.String()), nil
}
