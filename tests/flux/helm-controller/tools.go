//go:build tools

// Package flux pins Flux's helm-controller, which the GitOps tests run against the
// test cluster; ../../controlplane/build.sh compiles it from this module
// (its own module, so its dependencies resolve as in its release).
package flux

import _ "github.com/fluxcd/helm-controller"
