// Package deploy holds the tests of gantrain's Kubernetes manifests
// (deploy/kubernetes/) and the generation of the PrometheusRule there from the
// Prometheus rules file (docker/prometheus/gantrain.rules.yml). It is a module of its
// own, so that k8s.io/api stays out of gantrain's module.
//
// The tests decode every manifest strictly into the Kubernetes API types (and the
// Prometheus Operator's, for the PodMonitor and the PrometheusRule), build each
// of gpu/run, gpu/sweep, cpu/run and cpu/sweep with kustomize's library, and check the
// manifests against gantrain itself: every flag they pass exists in `gantrain train
// --help`, the ports and probe paths are the ones a running gantrain serves, the user
// is the image's, and every metric the rules name is one gantrain exports.
package deploy

//go:generate go test -run TestPrometheusRuleIsGenerated -update .
