//go:build tools

// Package helm pins the helm CLI the chart tests run; tests/controlplane/build.sh builds it.
package helm

import _ "helm.sh/helm/v3/cmd/helm"
