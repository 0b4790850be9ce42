"""A real Kubernetes control plane on this machine: etcd, kube-apiserver and kube-controller-manager built from Go
modules by `make kube` (hack/kube), started on loopback ports with a throwaway PKI. `llmops sandbox --apiserver
real` and the test suite start it."""
