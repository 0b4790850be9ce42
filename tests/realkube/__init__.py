"""A real Kubernetes control plane for tests: etcd, kube-apiserver and kube-controller-manager built from Go
modules by `make kube` (hack/kube), started on loopback ports with a throwaway PKI."""
