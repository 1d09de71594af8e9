//go:build tools

// Package controlplane pins the Kubernetes binaries Portico's tests and
// `portico dev` run. `build.sh` compiles them from this module.
package controlplane

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
