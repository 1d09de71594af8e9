//go:build tools

// Package kubelogin pins kubectl's `oidc-login` plugin (int128/kubelogin),
// which the tests run as a user would to log in to the API server through
// the login provider. `../controlplane/build.sh` compiles it as
// `kubectl-oidc_login`, the name kubectl looks for.
package kubelogin

import _ "github.com/int128/kubelogin"
